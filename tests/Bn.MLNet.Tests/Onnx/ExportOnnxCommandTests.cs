using System.CommandLine;
using Bn.MLNet.Data;
using Bn.MLNet.Samples.Commands;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.Onnx;

/// <summary>The samples app's <c>export-onnx</c> command.</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class ExportOnnxCommandTests
{
    [Fact]
    public void CommandLineParsesAndRequiresTheModel()
    {
        var root = Cli.CreateRootCommand();
        using var dir = new TempDir();
        string zip = dir.File("m.zip");
        File.WriteAllText(zip, "x");
        Assert.Empty(root.Parse(["export-onnx", "--model", zip, "--out", dir.File("m.onnx")]).Errors);
        Assert.NotEmpty(root.Parse(["export-onnx", "--out", dir.File("m.onnx")]).Errors);
        Assert.Contains(root.Parse(["export-onnx", "--model", dir.File("missing.zip")]).Errors, e => e.Message.Contains("missing.zip", StringComparison.Ordinal));
    }

    [Fact]
    public void ExportsASavedPipelineAndRefusesWhatIsNotAModel()
    {
        var p = Pipeline;
        using var dir = new TempDir();
        string zip = dir.File("model.zip");
        p.Context.Model.Save(p.Model, p.Train.Schema, zip);

        Assert.Equal(0, ExportOnnxCommand.Export(zip, dir.File("model.onnx")));
        using (var session = new InferenceSession(dir.File("model.onnx")))
        {
            Assert.Equal("Features", Assert.Single(session.InputMetadata).Key);
            Assert.Contains("Score", session.OutputMetadata.Keys);
        }

        string notAModel = dir.File("not-a-model.zip");
        File.WriteAllText(notAModel, "not a zip");
        Assert.Equal(2, ExportOnnxCommand.Export(notAModel, dir.File("other.onnx")));
        Assert.False(File.Exists(dir.File("other.onnx")));
        Assert.Equal(2, ExportOnnxCommand.Export(zip, Path.Combine(dir.Path, "missing-folder", "x.onnx")));
    }
}
