using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Bn.MLNet.Samples.Onnx;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

// Scores the Fashion-MNIST test set with a Bn.MLNet model exported to ONNX (SaveAsOnnx or `export-onnx`), using only
// ML.NET and ONNX Runtime. Usage: dotnet run --project src/Bn.MLNet.Samples.Onnx -- [MODEL.onnx] [DATA_DIR] [LIMIT]
string modelPath = args.Length > 0 ? args[0] : Path.Combine("runs", "main", "fashion-mnist-bncnn.onnx");
string dataDir = args.Length > 1 ? args[1] : FindDataFolder();
int? limit = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : null;
if (!File.Exists(modelPath))
{
    Console.Error.WriteLine($"No ONNX model at {Path.GetFullPath(modelPath)}: run the samples app's main job or `export-onnx` first.");
    return 2;
}

var test = FashionMnistTestSet.Read(dataDir, limit);
string[] classNames = ReadClassNames(modelPath, out string featureName, out string scoreName);
Console.WriteLine($"{modelPath}: input '{featureName}', output '{scoreName}', classes {string.Join(", ", classNames)}");

// The three lines: an ML.NET pipeline that applies the ONNX model to a column of 784 floats.
var ml = new MLContext();
IDataView data = ml.Data.LoadFromEnumerable(test.Images.Select(p => new ImageRow { Features = p }));
ITransformer model = ml.Transforms.ApplyOnnxModel(scoreName, featureName, modelPath).Fit(data);

var clock = Stopwatch.StartNew();
float[][] scores = model.Transform(data).GetColumn<float[]>(scoreName).ToArray();
double seconds = clock.Elapsed.TotalSeconds;
Console.WriteLine($"ApplyOnnxModel: {scores.Length:N0} images in {seconds:0.00} s = {scores.Length / seconds:N0} images/s; accuracy {Accuracy(scores, test, classNames):0.0000}");

clock.Restart();
float[][] batched = ScoreBatched(modelPath, featureName, scoreName, test.Images);
seconds = clock.Elapsed.TotalSeconds;
Console.WriteLine($"ONNX Runtime, batches of 256: {batched.Length:N0} images in {seconds:0.00} s = {batched.Length / seconds:N0} images/s; accuracy {Accuracy(batched, test, classNames):0.0000}");
(model as IDisposable)?.Dispose();
return 0;

// The class names and column names the exporter stored in the model's metadata.
static string[] ReadClassNames(string path, out string featureName, out string scoreName)
{
    using var session = new InferenceSession(path);
    var metadata = session.ModelMetadata.CustomMetadataMap;
    featureName = metadata.TryGetValue("bn.mlnet.feature_column", out var f) ? f : session.InputMetadata.Keys.First();
    scoreName = metadata.TryGetValue("bn.mlnet.score_column", out var s) ? s : "Score";
    return metadata.TryGetValue("bn.mlnet.class_names", out var names)
        ? JsonSerializer.Deserialize<string[]>(names) ?? FashionMnistTestSet.ClassNames
        : FashionMnistTestSet.ClassNames;
}

static float[][] ScoreBatched(string path, string featureName, string scoreName, float[][] images)
{
    using var session = new InferenceSession(path);
    using var runOptions = new RunOptions();
    int length = images[0].Length;
    var result = new List<float[]>(images.Length);
    for (int start = 0; start < images.Length; start += 256)
    {
        int n = Math.Min(256, images.Length - start);
        var flat = new float[n * length];
        for (int i = 0; i < n; i++)
            images[start + i].CopyTo(flat, i * length);
        using var input = OrtValue.CreateTensorValueFromMemory(flat, [n, length]);
        using var outputs = session.Run(runOptions, [featureName], [input], [scoreName]);
        float[] p = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        int k = p.Length / n;
        for (int i = 0; i < n; i++)
            result.Add(p.AsSpan(i * k, k).ToArray());
    }

    return result.ToArray();
}

static double Accuracy(float[][] scores, FashionMnistTestSet test, string[] classNames)
{
    int correct = 0;
    for (int i = 0; i < scores.Length; i++)
    {
        int best = Array.IndexOf(scores[i], scores[i].Max());
        if (classNames[best] == FashionMnistTestSet.ClassNames[test.Labels[i]])
            correct++;
    }

    return (double)correct / scores.Length;
}

static string FindDataFolder()
{
    for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
    {
        string candidate = Path.Combine(dir.FullName, "datasets", "fashion-mnist");
        if (Directory.Exists(candidate))
            return candidate;
    }

    return Path.Combine("datasets", "fashion-mnist");
}

/// <summary>One image: 784 raw pixels, the exported graph's input.</summary>
internal sealed class ImageRow
{
    [VectorType(784)]
    public float[] Features { get; set; } = [];
}
