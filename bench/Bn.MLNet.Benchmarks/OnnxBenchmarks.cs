using BenchmarkDotNet.Attributes;
using Bn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;

namespace Bn.MLNet.Benchmarks;

/// <summary>
/// A trained default network, its ONNX export (<see cref="BatchNormCnnTransformer.SaveAsOnnx(Stream)"/>) loaded in an
/// ONNX Runtime session and through ML.NET's ApplyOnnxModel, and prepared inputs. One thread on every side (libtorch
/// and ONNX Runtime intra-op), as in the other ML.NET benchmarks.
/// </summary>
public abstract class OnnxScoringBase : MLNetBenchmarkBase
{
    private BatchNormCnnTransformer _model = null!;
    private InferenceSession _session = null!;
    private RunOptions _runOptions = null!;
    private string _onnxPath = string.Empty;
    private ITransformer _onnxModel = null!;
    private PredictionEngine<MLNetScoringBase.ImageInput, MLNetScoringBase.ImageOutput> _engine = null!;
    private PredictionEngine<MLNetScoringBase.ImageInput, MLNetScoringBase.ImageOutput> _onnxEngine = null!;
    private MLNetScoringBase.ImageInput _row = null!;
    private float[] _probabilities = [];

    /// <summary>The ML.NET data view with only the features column (what ApplyOnnxModel reads).</summary>
    private IDataView _features = null!;

    /// <summary>Trains, exports and prepares.</summary>
    [GlobalSetup]
    public void Setup()
    {
        LoadData();
        _model = Ml.Transforms.BatchNormCnn(Options()).Fit(Data);
        _onnxPath = Path.Combine(Path.GetTempPath(), $"bnmlnet-bench-{Environment.ProcessId}.onnx");
        _model.SaveAsOnnx(_onnxPath);
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        _session = new InferenceSession(_onnxPath, sessionOptions);
        _runOptions = new RunOptions();
        _features = Ml.Transforms.SelectColumns("Features").Fit(Data).Transform(Data);
        var options = new OnnxOptions
        {
            ModelFile = _onnxPath,
            InputColumns = ["Features"],
            OutputColumns = ["Score"],
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
        };
        _onnxModel = Ml.Transforms.ApplyOnnxModel(options).Fit(_features);
        _row = new MLNetScoringBase.ImageInput { Features = Features.AsSpan(0, FashionMnist.FeatureLength).ToArray() };
        _engine = Ml.Model.CreatePredictionEngine<MLNetScoringBase.ImageInput, MLNetScoringBase.ImageOutput>(_model);
        _onnxEngine = Ml.Model.CreatePredictionEngine<MLNetScoringBase.ImageInput, MLNetScoringBase.ImageOutput>(_onnxModel);
        _probabilities = new float[Rows * FashionMnist.ClassCount];
    }

    /// <summary>Releases everything and deletes the ONNX file.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _engine.Dispose();
        _onnxEngine.Dispose();
        (_onnxModel as IDisposable)?.Dispose();
        _session.Dispose();
        _runOptions.Dispose();
        _model.Dispose();
        File.Delete(_onnxPath);
    }

    /// <summary>The transformer's Transform and a cursor over Score (libtorch, batches of 128).</summary>
    protected float TransformCore() => ScoreColumn.Sum(_model.Transform(Data));

    /// <summary>ApplyOnnxModel's Transform and a cursor over Score (ONNX Runtime, one row per run).</summary>
    protected float ApplyOnnxModelCore() => ScoreColumn.Sum(_onnxModel.Transform(_features));

    /// <summary>ONNX Runtime directly: batches of 128 rows as one [128, 784] input each, probabilities copied out.</summary>
    protected float OnnxRuntimeBatchedCore()
    {
        int f = FashionMnist.FeatureLength, k = FashionMnist.ClassCount;
        for (int start = 0; start < Rows; start += BatchSize)
        {
            int n = Math.Min(BatchSize, Rows - start);
            using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Features.AsMemory(start * f, n * f), [n, f]);
            using var outputs = _session.Run(_runOptions, ["Features"], [input], ["Score"]);
            outputs[0].GetTensorDataAsSpan<float>().CopyTo(_probabilities.AsSpan(start * k, n * k));
        }

        return _probabilities[0];
    }

    /// <summary>The transformer's prediction engine on one row.</summary>
    protected float PredictionEngineCore() => _engine.Predict(_row).Score[0];

    /// <summary>ApplyOnnxModel's prediction engine on one row.</summary>
    protected float OnnxPredictionEngineCore() => _onnxEngine.Predict(_row).Score[0];

    /// <summary>ONNX Runtime directly on one [1, 784] row.</summary>
    protected float OnnxRuntimeSingleRowCore()
    {
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _row.Features.AsMemory(), [1, FashionMnist.FeatureLength]);
        using var outputs = _session.Run(_runOptions, ["Features"], [input], ["Score"]);
        return outputs[0].GetTensorDataAsSpan<float>()[0];
    }
}

/// <summary>Scoring 2,048 rows: the TorchSharp transformer's Transform (baseline) vs ONNX Runtime batched and ApplyOnnxModel.</summary>
[Config(typeof(MLNetBenchmarkConfig))]
public class OnnxThroughputBenchmarks : OnnxScoringBase
{
    /// <summary>Baseline: BatchNormCnnTransformer.Transform (libtorch).</summary>
    [Benchmark(Baseline = true)]
    public float TorchSharpTransform() => TransformCore();

    /// <summary>The exported file in an ONNX Runtime session, 128 rows per run.</summary>
    [Benchmark]
    public float OnnxRuntimeBatched() => OnnxRuntimeBatchedCore();

    /// <summary>The exported file through ML.NET's ApplyOnnxModel.</summary>
    [Benchmark]
    public float MLNetApplyOnnxModel() => ApplyOnnxModelCore();
}

/// <summary>One row: the TorchSharp transformer's prediction engine (baseline) vs ONNX Runtime and ApplyOnnxModel's prediction engine.</summary>
[Config(typeof(MLNetLatencyConfig))]
public class OnnxLatencyBenchmarks : OnnxScoringBase
{
    /// <summary>Baseline: PredictionEngine over BatchNormCnnTransformer (libtorch).</summary>
    [Benchmark(Baseline = true)]
    public float TorchSharpPredictionEngine() => PredictionEngineCore();

    /// <summary>One [1, 784] run of the exported file in an ONNX Runtime session.</summary>
    [Benchmark]
    public float OnnxRuntimeSingleRow() => OnnxRuntimeSingleRowCore();

    /// <summary>PredictionEngine over ApplyOnnxModel.</summary>
    [Benchmark]
    public float MLNetApplyOnnxModelPredictionEngine() => OnnxPredictionEngineCore();
}
