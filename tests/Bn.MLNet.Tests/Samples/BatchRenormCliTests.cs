using Bn.MLNet.Samples.Commands;

namespace Bn.MLNet.Tests.Samples;

/// <summary>The samples app accepts Batch Renormalization as a normalization.</summary>
public class BatchRenormCliTests
{
    [Fact]
    public void TrainAcceptsBatchRenorm()
    {
        var parse = Cli.CreateRootCommand().Parse(new[] { "train", "--normalization", "BatchRenorm", "--epochs", "1" });
        Assert.Empty(parse.Errors);
        Assert.NotEmpty(Cli.CreateRootCommand().Parse(new[] { "train", "--normalization", "BatchRenormalization" }).Errors);
    }
}
