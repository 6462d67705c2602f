using BenchmarkDotNet.Attributes;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;

namespace Bn.MLNet.Benchmarks;

/// <summary>
/// Scoring the 10,000 Fashion-MNIST test rows with the default network (trained for a few steps: the speed does not depend
/// on the weights), every path side by side in one process with the same thread count: libtorch's intra-op threads and
/// ONNX Runtime's <c>IntraOpNumThreads</c> are both <see cref="Threads"/> (0 = all cores, libtorch's default). The baseline
/// is ONNX Runtime on the model's own <c>SaveAsOnnx</c> graph in batches of 256, against the transformer's default
/// <c>InferenceBatchSize</c> of 256.
/// </summary>
public abstract class ScoringBenchmarkBase
{
    /// <summary>Rows per ONNX Runtime run and per transformer forward pass.</summary>
    protected const int Batch = 256;

    private InferenceSession _session = null!;
    private RunOptions _run = null!;
    private float[] _scores = [];

    /// <summary>libtorch and ONNX Runtime threads; 0 = all cores.</summary>
    [Params(1, 0)]
    public int Threads { get; set; }

    /// <summary>The context of the models.</summary>
    protected MLContext Ml { get; } = new(seed: 1);

    /// <summary>The test rows as an IDataView with Features (784 Single) and a key Label.</summary>
    protected IDataView Test { get; private set; } = null!;

    /// <summary>The test rows, row-major.</summary>
    protected float[] Features { get; private set; } = [];

    /// <summary>The trained model on the default engine (Automatic: ONNX Runtime here).</summary>
    protected BatchNormCnnTransformer Automatic { get; private set; } = null!;

    /// <summary>The same model on libtorch.</summary>
    protected BatchNormCnnTransformer LibTorch { get; private set; } = null!;

    /// <summary>Trains the model, builds the ONNX Runtime session and the inputs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        int threads = Threads == 0 ? Environment.ProcessorCount : Threads;
        torch.set_num_threads(threads);
        var train = FashionMnist.LoadTrain(Ml, limit: 2048);
        Automatic = Ml.Transforms.BatchNormCnn(new BatchNormCnnOptions { MaxSteps = 16, Seed = 1, Threads = threads }).Fit(train);
        LibTorch = Automatic.WithScoringEngine(ScoringEngine.LibTorch);
        Test = FashionMnist.LoadTest(Ml);
        var raw = FashionMnist.Read(null, FashionMnistSplit.Test);
        Features = raw.Images.Pixels.Select(b => (float)b).ToArray();
        using var stream = new MemoryStream();
        Automatic.SaveAsOnnx(stream);
        using var options = new SessionOptions { IntraOpNumThreads = threads };
        _session = new InferenceSession(stream.ToArray(), options);
        _run = new RunOptions();
        _scores = new float[raw.Count * FashionMnist.ClassCount];
        Prepare();
    }

    /// <summary>Releases everything.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        Release();
        _session.Dispose();
        _run.Dispose();
        LibTorch.Dispose();
        Automatic.Dispose();
    }

    /// <summary>The subclass's own models.</summary>
    protected virtual void Prepare()
    {
    }

    /// <summary>Releases the subclass's models.</summary>
    protected virtual void Release()
    {
    }

    /// <summary>ONNX Runtime on every test row in batches of <paramref name="rows"/> rows, probabilities copied out.</summary>
    protected float OnnxRuntimeRuns(int rows)
    {
        int total = Features.Length / FashionMnist.FeatureLength;
        for (int start = 0; start < total; start += rows)
            OnnxRuntimeRun(start, Math.Min(rows, total - start));
        return _scores[0];
    }

    /// <summary>One ONNX Runtime run of the exported graph on rows [start, start + n), probabilities copied out.</summary>
    protected float OnnxRuntimeRun(int start, int n)
    {
        int f = FashionMnist.FeatureLength, k = FashionMnist.ClassCount;
        using var input = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, Features.AsMemory(start * f, n * f), [n, f]);
        using var outputs = _session.Run(_run, ["Features"], [input], ["Score"]);
        outputs[0].GetTensorDataAsSpan<float>().CopyTo(_scores.AsSpan(start * k, n * k));
        return _scores[start * k];
    }

    /// <summary><paramref name="model"/>.Transform(Test) and a cursor over the Score column of every row.</summary>
    protected float ScoreSum(ITransformer model) => ScoreColumn.Sum(model.Transform(Test));
}

/// <summary>
/// Throughput: ONNX Runtime in batches of 256 (baseline) against <c>Transform</c> on each engine, and the libtorch
/// network's own batched evaluation (<see cref="Evaluation.Evaluate"/>, as the samples' <c>train</c> reports the test set)
/// plain and flip-averaged.
/// </summary>
[Config(typeof(MLNetBenchmarkConfig))]
public class ScoringThroughputBenchmarks : ScoringBenchmarkBase
{
    private BatchNormCnnNetwork _network = null!;
    private BatchSource _source = null!;

    /// <summary>Baseline: ONNX Runtime, batches of 256.</summary>
    [Benchmark(Baseline = true)]
    public float OnnxRuntimeBatches() => OnnxRuntimeRuns(Batch);

    /// <summary>Transform with the default engine (ONNX Runtime when the app references it, as this one does).</summary>
    [Benchmark]
    public float TransformAutomatic() => ScoreSum(Automatic);

    /// <summary>Transform on libtorch (batch normalization folded).</summary>
    [Benchmark]
    public float TransformLibTorch() => ScoreSum(LibTorch);

    /// <summary>The network's own batched evaluation on libtorch, batches of 256.</summary>
    [Benchmark]
    public double EvaluateNetwork() => Evaluation.Evaluate(_network, _source, Batch).Accuracy;

    /// <summary>The same with test-time flip averaging.</summary>
    [Benchmark]
    public double EvaluateNetworkFlipAveraged() => Evaluation.Evaluate(_network, _source, Batch, testTimeFlipAveraging: true).Accuracy;

    /// <inheritdoc/>
    protected override void Prepare()
    {
        _network = Automatic.CopyNetwork();
        _source = BatchSource.FromDataView(Test, "Features", "Label", FashionMnist.FeatureLength);
    }

    /// <inheritdoc/>
    protected override void Release() => _network.Dispose();
}

/// <summary>Flip-averaged Transform on each engine against the plain one (baseline: plain, default engine).</summary>
[Config(typeof(MLNetBenchmarkConfig))]
public class ScoringFlipAveragingBenchmarks : ScoringBenchmarkBase
{
    private BatchNormCnnTransformer _flipAutomatic = null!;
    private BatchNormCnnTransformer _flipLibTorch = null!;

    /// <summary>Baseline: Transform with the default engine, flip averaging off.</summary>
    [Benchmark(Baseline = true)]
    public float TransformAutomatic() => ScoreSum(Automatic);

    /// <summary>Transform with the default engine, flip averaging on.</summary>
    [Benchmark]
    public float TransformAutomaticFlipAveraged() => ScoreSum(_flipAutomatic);

    /// <summary>Transform on libtorch, flip averaging off.</summary>
    [Benchmark]
    public float TransformLibTorch() => ScoreSum(LibTorch);

    /// <summary>Transform on libtorch, flip averaging on.</summary>
    [Benchmark]
    public float TransformLibTorchFlipAveraged() => ScoreSum(_flipLibTorch);

    /// <inheritdoc/>
    protected override void Prepare()
    {
        _flipAutomatic = Automatic.WithTestTimeFlipAveraging(true);
        _flipLibTorch = LibTorch.WithTestTimeFlipAveraging(true);
    }

    /// <inheritdoc/>
    protected override void Release()
    {
        _flipAutomatic.Dispose();
        _flipLibTorch.Dispose();
    }
}

/// <summary>One row: ONNX Runtime's run of a [1, 784] input (baseline) against the prediction engine on each engine.</summary>
[Config(typeof(MLNetLatencyConfig))]
public class ScoringLatencyBenchmarks : ScoringBenchmarkBase
{
    private PredictionEngine<MLNetScoringBase.ImageInput, MLNetScoringBase.ImageOutput> _automatic = null!;
    private PredictionEngine<MLNetScoringBase.ImageInput, MLNetScoringBase.ImageOutput> _libTorch = null!;
    private MLNetScoringBase.ImageInput _row = null!;

    /// <summary>Baseline: one ONNX Runtime run on one row.</summary>
    [Benchmark(Baseline = true)]
    public float OnnxRuntimeOneRow() => OnnxRuntimeRun(0, 1);

    /// <summary>The prediction engine with the default engine.</summary>
    [Benchmark]
    public float PredictionEngineAutomatic() => _automatic.Predict(_row).Score[0];

    /// <summary>The prediction engine on libtorch.</summary>
    [Benchmark]
    public float PredictionEngineLibTorch() => _libTorch.Predict(_row).Score[0];

    /// <inheritdoc/>
    protected override void Prepare()
    {
        _row = new MLNetScoringBase.ImageInput { Features = Features.AsSpan(0, FashionMnist.FeatureLength).ToArray() };
        _automatic = Ml.Model.CreatePredictionEngine<MLNetScoringBase.ImageInput, MLNetScoringBase.ImageOutput>(Automatic);
        _libTorch = Ml.Model.CreatePredictionEngine<MLNetScoringBase.ImageInput, MLNetScoringBase.ImageOutput>(LibTorch);
    }

    /// <inheritdoc/>
    protected override void Release()
    {
        _automatic.Dispose();
        _libTorch.Dispose();
    }
}
