using System.Diagnostics;
using System.Globalization;
using Bn.MLNet.Samples.Onnx;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

// Scores a Bn.MLNet model exported to ONNX (SaveAsOnnx, `export-onnx`, or `binary`/`regression --onnx`) with ML.NET and
// ONNX Runtime only, whatever its task (read from the model's metadata, bn.mlnet.task):
//   multiclass: the Fashion-MNIST test set, accuracy;
//   binary: the Fashion-MNIST test set, one class against the rest (the `binary` command's: Shirt), accuracy and AUC;
//   regression: the diabetes test rows (every fifth row of datasets/diabetes, as the `regression` command splits), RMSE and R².
// Usage: dotnet run --project src/Bn.MLNet.Samples.Onnx -- [MODEL.onnx] [LIMIT]
string modelPath = args.Length > 0 ? args[0] : Path.Combine("runs", "main", "fashion-mnist-bncnn.onnx");
int? limit = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : null;
if (!File.Exists(modelPath))
{
    Console.Error.WriteLine($"No ONNX model at {Path.GetFullPath(modelPath)}: run the samples app's main job, `export-onnx`, or `binary`/`regression --onnx` first.");
    return 2;
}

var model = ExportedModel.Read(modelPath);
Console.WriteLine($"{modelPath}: {model.Task}, input '{model.FeatureName}', output '{model.ScoreName}'");
var (rows, truth) = model.Task == "Regression"
    ? DiabetesTestRows.Read(DataFolder("diabetes"))
    : FashionMnistRows(model, limit);

// The three lines: an ML.NET pipeline that applies the ONNX model to a column of feature vectors.
var ml = new MLContext();
IDataView data = ml.Data.LoadFromEnumerable(rows.Select(p => new FeatureRow { Features = p }), FeatureRow.Schema(rows[0].Length));
ITransformer scorer = ml.Transforms.ApplyOnnxModel(model.ScoreName, model.FeatureName, modelPath).Fit(data);

var clock = Stopwatch.StartNew();
float[][] scores = model.Task == "MulticlassClassification"
    ? scorer.Transform(data).GetColumn<float[]>(model.ScoreName).ToArray()
    : scorer.Transform(data).GetColumn<float[]>(model.ScoreName).Select(v => new[] { v[0] }).ToArray();
double seconds = clock.Elapsed.TotalSeconds;
Console.WriteLine($"ApplyOnnxModel: {scores.Length:N0} rows in {seconds:0.00} s = {scores.Length / seconds:N0} rows/s; {Metrics.Describe(model, scores, truth)}");

clock.Restart();
float[][] batched = ScoreBatched(modelPath, model, rows);
seconds = clock.Elapsed.TotalSeconds;
Console.WriteLine($"ONNX Runtime, batches of 256: {batched.Length:N0} rows in {seconds:0.00} s = {batched.Length / seconds:N0} rows/s; {Metrics.Describe(model, batched, truth)}");
(scorer as IDisposable)?.Dispose();
return 0;

// Multiclass: the class index of each test image; binary: 1 for the positive class, 0 for the rest.
static (float[][] Rows, float[] Truth) FashionMnistRows(ExportedModel model, int? limit)
{
    var test = FashionMnistTestSet.Read(DataFolder("fashion-mnist"), limit);
    float[] truth = model.Task == "BinaryClassification"
        ? test.Labels.Select(l => FashionMnistTestSet.ClassNames[l] == Metrics.BinaryPositiveClass ? 1f : 0f).ToArray()
        : test.Labels.Select(l => (float)Array.IndexOf(model.ClassNames, FashionMnistTestSet.ClassNames[l])).ToArray();
    return (test.Images, truth);
}

static float[][] ScoreBatched(string path, ExportedModel model, float[][] rows)
{
    using var session = new InferenceSession(path);
    using var runOptions = new RunOptions();
    int length = rows[0].Length;
    var result = new List<float[]>(rows.Length);
    for (int start = 0; start < rows.Length; start += 256)
    {
        int n = Math.Min(256, rows.Length - start);
        var flat = new float[n * length];
        for (int i = 0; i < n; i++)
            rows[start + i].CopyTo(flat, i * length);
        using var input = OrtValue.CreateTensorValueFromMemory(flat, [n, length]);
        using var outputs = session.Run(runOptions, [model.FeatureName], [input], [model.ScoreName]);
        float[] p = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        int k = p.Length / n;
        for (int i = 0; i < n; i++)
            result.Add(p.AsSpan(i * k, k).ToArray());
    }

    return result.ToArray();
}

static string DataFolder(string name)
{
    for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
    {
        string candidate = Path.Combine(dir.FullName, "datasets", name);
        if (Directory.Exists(candidate))
            return candidate;
    }

    return Path.Combine("datasets", name);
}

/// <summary>One row: the exported graph's input vector (784 raw pixels, or the diabetes data's 10 raw features).</summary>
internal sealed class FeatureRow
{
    public float[] Features { get; set; } = [];

    /// <summary>The row type with its vector's size (ApplyOnnxModel needs a known size).</summary>
    public static SchemaDefinition Schema(int length)
    {
        var schema = SchemaDefinition.Create(typeof(FeatureRow));
        schema[nameof(Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, length);
        return schema;
    }
}
