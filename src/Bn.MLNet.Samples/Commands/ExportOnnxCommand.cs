using System.CommandLine;
using Microsoft.ML;
using Spectre.Console;

namespace Bn.MLNet.Samples.Commands;

/// <summary><c>export-onnx --model MODEL.zip --out MODEL.onnx</c>: writes a saved model's network as an ONNX file.</summary>
internal static class ExportOnnxCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model")
        {
            Description = "Model zip saved with mlContext.Model.Save (train --model writes one; the main job writes runs/main/fashion-mnist-bncnn.zip), or a network saved with BatchNormCnnNetwork.Save.",
            HelpName = "PATH",
            Required = true,
        }.AcceptExistingOnly();
        var output = new Option<FileInfo?>("--out")
        {
            Description = "The ONNX file to write. Default: the model path with the extension .onnx.",
            HelpName = "PATH",
        };
        var command = new Command(
            "export-onnx",
            "Write a saved model's BatchNormCnn network as an ONNX file that scores without libtorch (ONNX Runtime, or ML.NET's ApplyOnnxModel).")
        { model, output };
        command.SetAction(p =>
        {
            string modelPath = p.GetValue(model)!.FullName;
            return Export(modelPath, p.GetValue(output)?.FullName ?? Path.ChangeExtension(modelPath, ".onnx"));
        });
        return command;
    }

    /// <summary>Loads <paramref name="modelPath"/> and writes its network to <paramref name="onnxPath"/>; returns the exit code.</summary>
    public static int Export(string modelPath, string onnxPath)
    {
        var ml = new MLContext();
        if (!ModelCommands.TryLoad(ml, modelPath, out ITransformer loaded))
            return 2;

        try
        {
            BatchNormCnnTransformer? cnn = ModelCommands.Find(loaded);
            if (cnn is null)
            {
                AnsiConsole.MarkupLine($"[red]{Markup.Escape(modelPath)} holds no BatchNormCnn transformer.[/]");
                return 2;
            }

            return Write(cnn, onnxPath) ? 0 : 2;
        }
        finally
        {
            (loaded as IDisposable)?.Dispose();
        }
    }

    /// <summary>Writes <paramref name="cnn"/> as ONNX and says so (or prints the error); true on success.</summary>
    internal static bool Write(BatchNormCnnTransformer cnn, string onnxPath)
    {
        try
        {
            cnn.SaveAsOnnx(onnxPath);
        }
        catch (Exception ex) when (ex is IOException or NotSupportedException)
        {
            AnsiConsole.MarkupLine($"[red]Cannot export ONNX:[/] {Markup.Escape(ex.Message)}");
            return false;
        }

        string outputs = $"{cnn.ScoreColumnName} [N, {cnn.ClassNames.Count}]" +
                         (cnn.EmbeddingColumnName is null ? string.Empty : $", {cnn.EmbeddingColumnName}") + $", {cnn.OnnxPredictedIndexName} [N]";
        string message =
            $"ONNX model written: {onnxPath} ({new FileInfo(onnxPath).Length / 1024.0:N0} KB, opset {BatchNormCnnTransformer.OnnxOpsetVersion}; " +
            $"input {cnn.FeatureColumnName} float32 [N, {cnn.Architecture.InputLength}], outputs {outputs}); it scores without libtorch.";
        AnsiConsole.WriteLine(message);
        return true;
    }
}
