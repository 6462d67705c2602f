using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

namespace Bn.MLNet.Samples.Onnx;

/// <summary>What a Bn.MLNet ONNX file says about itself in its metadata: the task, the input and score names, the classes.</summary>
internal sealed record ExportedModel(string Task, string FeatureName, string ScoreName, string[] ClassNames)
{
    public static ExportedModel Read(string path)
    {
        using var session = new InferenceSession(path);
        var metadata = session.ModelMetadata.CustomMetadataMap;
        string Get(string key, string fallback) => metadata.TryGetValue(key, out var v) ? v : fallback;
        string[] classes = metadata.TryGetValue("bn.mlnet.class_names", out var names)
            ? JsonSerializer.Deserialize<string[]>(names) ?? FashionMnistTestSet.ClassNames
            : FashionMnistTestSet.ClassNames;
        return new ExportedModel(Get("bn.mlnet.task", "MulticlassClassification"), Get("bn.mlnet.feature_column", session.InputMetadata.Keys.First()),
            Get("bn.mlnet.score_column", "Score"), classes);
    }
}
