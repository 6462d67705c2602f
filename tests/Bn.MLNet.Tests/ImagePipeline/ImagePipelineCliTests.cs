using System.CommandLine;
using Bn.MLNet.Samples.Commands;

namespace Bn.MLNet.Tests.ImagePipeline;

/// <summary>The <c>image-pipeline</c> command's options: they parse, bad values are refused, and the help lists them.</summary>
public class ImagePipelineCliTests
{
    private static IReadOnlyList<string> Errors(params string[] args) =>
        Cli.CreateRootCommand().Parse(args).Errors.Select(e => e.Message).ToList();

    [Fact]
    public void OptionsParse()
    {
        Assert.Empty(Errors("image-pipeline"));
        Assert.Empty(Errors("image-pipeline", "--channels", "1", "--size", "32", "--epochs", "1", "--train-count", "100", "--test-count", "20", "--out", "x"));
        Assert.Empty(Errors("image-pipeline", "--images", Path.GetTempPath()));
    }

    [Fact]
    public void BadValuesAreRefusedNamingTheOption()
    {
        Assert.Contains(Errors("image-pipeline", "--channels", "2"), e => e.Contains('2', StringComparison.Ordinal));
        Assert.Contains(Errors("image-pipeline", "--size", "4"), e => e.Contains("--size must be at least 8", StringComparison.Ordinal));
        Assert.Contains(Errors("image-pipeline", "--epochs", "0"), e => e.Contains("--epochs", StringComparison.Ordinal));
        string missing = Path.Combine(Path.GetTempPath(), "bnmlnet-no-such-image-folder");
        Assert.Contains(Errors("image-pipeline", "--images", missing), e => e.Contains(missing, StringComparison.Ordinal));
    }

    [Fact]
    public void HelpDescribesEveryOption()
    {
        var command = Cli.CreateRootCommand().Subcommands.Single(c => c.Name == "image-pipeline");
        Assert.False(string.IsNullOrWhiteSpace(command.Description));
        foreach (var name in new[] { "--images", "--out", "--train-count", "--test-count", "--channels", "--size", "--epochs", "--data" })
        {
            var option = command.Options.Single(o => o.Name == name);
            Assert.False(string.IsNullOrWhiteSpace(option.Description), name);
        }
    }
}
