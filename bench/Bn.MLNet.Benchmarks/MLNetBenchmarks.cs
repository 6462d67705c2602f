using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Benchmarks;

/// <summary>
/// In-process, short jobs (no extra build folder with another copy of libtorch). Each pair is measured side by side
/// in one run; compare the ML.NET path with its raw TorchSharp baseline.
/// </summary>
public sealed class MLNetBenchmarkConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public MLNetBenchmarkConfig()
    {
        AddJob(Job.Default
            .WithStrategy(RunStrategy.Monitoring)
            .WithLaunchCount(1)
            .WithWarmupCount(1)
            .WithIterationCount(5)
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithId("InProcessShort"));
    }
}

/// <summary>
/// Shared data and network settings for the ML.NET benchmarks. Both sides of every pair run libtorch with one thread:
/// on a shared 2-core machine, multi-threaded parallel regions wait for descheduled threads and swing timings by
/// 10× between otherwise identical runs, which would swamp the overhead being measured.
/// </summary>
public abstract class MLNetBenchmarkBase
{
    /// <summary>Rows used for training and scoring.</summary>
    protected const int Rows = 2048;

    /// <summary>Training and inference batch size.</summary>
    protected const int BatchSize = 128;

    /// <summary>Seed of both paths.</summary>
    protected const int Seed = 3;

    /// <summary>The ML.NET context.</summary>
    protected MLContext Ml { get; } = new(seed: 1);

    /// <summary>Fashion-MNIST rows as a key-labelled IDataView.</summary>
    protected IDataView Data { get; private set; } = null!;

    /// <summary>The same rows as a contiguous float array.</summary>
    protected float[] Features { get; private set; } = [];

    /// <summary>The same labels (0-based).</summary>
    protected long[] Labels { get; private set; } = [];

    /// <summary>
    /// The estimator options (default network, one epoch, constant learning rate; no label smoothing and no augmentation,
    /// as in the raw loop it is compared with; scoring on libtorch, the engine the raw baselines run).
    /// </summary>
    protected static BatchNormCnnOptions Options() => new()
    {
        Epochs = 1,
        LabelSmoothing = 0,
        RandomCropPadding = 0,
        HorizontalFlip = false,
        BatchSize = BatchSize,
        InferenceBatchSize = BatchSize,
        Seed = Seed,
        Threads = 1,
        Schedule = Training.LearningRateScheduleKind.Constant,
        LearningRate = 0.05,
        ScoringEngine = ScoringEngine.LibTorch,
    };

    /// <summary>Loads the data.</summary>
    protected void LoadData()
    {
        torch.set_num_threads(1);
        var raw = FashionMnist.Read(null, FashionMnistSplit.Train, Rows);
        Features = raw.Images.Pixels.Select(b => (float)b).ToArray();
        Labels = raw.Labels.Select(l => (long)l).ToArray();
        Data = FashionMnist.LoadTrain(Ml, limit: Rows);
    }
}

/// <summary>Fit through ML.NET (streaming IDataView, the training engine) vs a raw TorchSharp loop over prepared tensors.</summary>
[Config(typeof(MLNetBenchmarkConfig))]
public class MLNetFitBenchmarks : MLNetBenchmarkBase
{
    private List<(Tensor X, Tensor Y)> _batches = [];

    /// <summary>Loads data and prepares tensors for the raw loop.</summary>
    [GlobalSetup]
    public void Setup()
    {
        LoadData();
        int f = FashionMnist.FeatureLength;
        for (int start = 0; start + 1 < Rows; start += BatchSize)
        {
            int n = Math.Min(BatchSize, Rows - start);
            _batches.Add((torch.tensor(Features.AsSpan(start * f, n * f).ToArray(), [n, f]), torch.tensor(Labels.AsSpan(start, n).ToArray(), [n])));
        }
    }

    /// <summary>Disposes the prepared tensors.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var (x, y) in _batches)
        {
            x.Dispose();
            y.Dispose();
        }
    }

    /// <summary>Baseline: build the same network and run one epoch of SGD (momentum, Nesterov, weight decay) over prepared tensors.</summary>
    [Benchmark(Baseline = true)]
    public float RawTorchSharpEpoch()
    {
        NetworkArchitecture architecture = Options().Network;
        architecture.ClassCount = FashionMnist.ClassCount;
        using var net = new BatchNormCnnNetwork(architecture, Seed);
        net.train();
        using var opt = torch.optim.SGD(net.parameters(), 0.05, momentum: 0.9, nesterov: true, weight_decay: 5e-4);
        float last = 0;
        foreach (var (x, y) in _batches)
        {
            using var scope = torch.NewDisposeScope();
            opt.zero_grad();
            var loss = torch.nn.functional.cross_entropy(net.forward(x), y);
            loss.backward();
            opt.step();
            last = loss.item<float>();
        }

        return last;
    }

    /// <summary>mlContext.Transforms.BatchNormCnn(...).Fit over the IDataView (one epoch).</summary>
    [Benchmark]
    public int MLNetFit()
    {
        using var model = Ml.Transforms.BatchNormCnn(Options()).Fit(Data);
        return model.ClassNames.Count;
    }
}

/// <summary>Transform throughput (lazy batched cursor) vs raw batched eval.</summary>
[Config(typeof(MLNetBenchmarkConfig))]
public class MLNetTransformBenchmarks : MLNetScoringBase
{
    /// <summary>Baseline: eval forward + softmax per prepared batch, probabilities copied to a managed array.</summary>
    [Benchmark(Baseline = true)]
    public float RawBatchedEval() => RawBatchedEvalCore();

    /// <summary>model.Transform(data) and a cursor over the Score column of every row.</summary>
    [Benchmark]
    public float MLNetTransform() => MLNetTransformCore();

    /// <summary>model.Transform(data) and a cursor over Score and the pass-through Label (what Evaluate reads).</summary>
    [Benchmark]
    public float MLNetTransformWithLabel() => MLNetTransformWithLabelCore();
}

/// <summary>Transform throughput with test-time flip averaging (image and mirror, 2N rows per pass) vs without.</summary>
[Config(typeof(MLNetBenchmarkConfig))]
public class MLNetFlipAveragingBenchmarks : MLNetScoringBase
{
    private BatchNormCnnTransformer? _flipped;

    /// <summary>Baseline: model.Transform(data) and a cursor over the Score column (flip averaging off, the default).</summary>
    [Benchmark(Baseline = true)]
    public float Transform() => MLNetTransformCore();

    /// <summary>The same with a copy of the model whose TestTimeFlipAveraging is on.</summary>
    [Benchmark]
    public float TransformFlipAveraged()
    {
        _flipped ??= Model.WithTestTimeFlipAveraging(true);
        return ScoreSum(_flipped);
    }

    /// <summary>Releases the flip-averaging copy.</summary>
    [GlobalCleanup(Target = nameof(TransformFlipAveraged))]
    public void CleanupFlipped()
    {
        _flipped?.Dispose();
        _flipped = null;
        Cleanup();
    }
}

/// <summary>Prediction-engine latency vs a raw single forward (many invocations per iteration).</summary>
[Config(typeof(MLNetLatencyConfig))]
public class MLNetLatencyBenchmarks : MLNetScoringBase
{
    /// <summary>Baseline: one row, one eval forward + softmax, copied out.</summary>
    [Benchmark(Baseline = true)]
    public float RawSingleForward() => RawSingleForwardCore();

    /// <summary>PredictionEngine.Predict on one row.</summary>
    [Benchmark]
    public float PredictionEngine() => PredictionEngineCore();
}

/// <summary>Throughput strategy, in process: 10 iterations of 64 predictions each.</summary>
public sealed class MLNetLatencyConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public MLNetLatencyConfig()
    {
        AddJob(Job.Default
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(10)
            .WithInvocationCount(64)
            .WithUnrollFactor(1)
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithId("InProcess64x10"));
    }
}

/// <summary>A trained model and prepared inputs for the scoring benchmarks.</summary>
public abstract class MLNetScoringBase : MLNetBenchmarkBase
{
    private BatchNormCnnTransformer _model = null!;
    private BatchNormCnnNetwork _folded = null!;
    private List<Tensor> _batches = [];
    private PredictionEngine<ImageInput, ImageOutput> _engine = null!;
    private ImageInput _row = null!;
    private float[] _rowFeatures = [];
    private float[] _probabilities = [];
    private readonly float[] _single = new float[FashionMnist.ClassCount];

    /// <summary>Trains one model and prepares inputs.</summary>
    [GlobalSetup]
    public void Setup()
    {
        LoadData();
        _model = Ml.Transforms.BatchNormCnn(Options()).Fit(Data);
        _folded = _model.ScoringNetwork.FoldBatchNorm();   // what the libtorch engine runs
        int f = FashionMnist.FeatureLength;
        for (int start = 0; start < Rows; start += BatchSize)
        {
            int n = Math.Min(BatchSize, Rows - start);
            _batches.Add(torch.tensor(Features.AsSpan(start * f, n * f).ToArray(), [n, f]));
        }

        _rowFeatures = Features.AsSpan(0, f).ToArray();
        _row = new ImageInput { Features = _rowFeatures };
        _engine = Ml.Model.CreatePredictionEngine<ImageInput, ImageOutput>(_model);
        _probabilities = new float[Rows * FashionMnist.ClassCount];
    }

    /// <summary>The trained model.</summary>
    protected BatchNormCnnTransformer Model => _model;

    /// <summary>Releases the model and tensors.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _engine.Dispose();
        _model.Dispose();
        _folded.Dispose();
        _batches.ForEach(b => b.Dispose());
    }

    /// <summary>Raw batched eval of the BN-folded network (the function and the network the libtorch engine scores with).</summary>
    protected float RawBatchedEvalCore()
    {
        using var noGrad = torch.no_grad();
        int offset = 0;
        foreach (var x in _batches)
        {
            using var scope = torch.NewDisposeScope();
            var p = torch.nn.functional.softmax(_folded.forward(x), 1);
            int n = (int)p.numel();
            p.data<float>().CopyTo(_probabilities.AsSpan(offset, n), 0, 0);
            offset += n;
        }

        return _probabilities[0];
    }

    /// <summary>Transform and a Score cursor.</summary>
    protected float MLNetTransformCore() => ScoreSum(_model);

    /// <summary><paramref name="model"/>.Transform(data) and a cursor over the Score column of every row.</summary>
    protected float ScoreSum(ITransformer model) => ScoreColumn.Sum(model.Transform(Data));

    /// <summary>Transform and a cursor over Score and the pass-through Label column.</summary>
    protected float MLNetTransformWithLabelCore()
    {
        var scored = _model.Transform(Data);
        var score = scored.Schema["Score"];
        var label = scored.Schema["Label"];
        using var cursor = scored.GetRowCursor([score, label]);
        var scoreGetter = cursor.GetGetter<VBuffer<float>>(score);
        var labelGetter = cursor.GetGetter<uint>(label);
        VBuffer<float> buffer = default;
        uint key = 0;
        float sum = 0;
        while (cursor.MoveNext())
        {
            scoreGetter(ref buffer);
            labelGetter(ref key);
            sum += buffer.GetValues()[(int)key - 1];
        }

        return sum;
    }

    /// <summary>Raw single-row forward of the BN-folded network.</summary>
    protected float RawSingleForwardCore()
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(_rowFeatures, [1, (long)_rowFeatures.Length]);
        var p = torch.nn.functional.softmax(_folded.forward(x), 1);
        p.data<float>().CopyTo(_single, 0, 0);
        return _single[0];
    }

    /// <summary>Prediction engine on one row.</summary>
    protected float PredictionEngineCore() => _engine.Predict(_row).Score[0];

    /// <summary>Input row of the prediction engine.</summary>
    public sealed class ImageInput
    {
        /// <summary>784 raw pixels.</summary>
        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }

    /// <summary>Output row of the prediction engine.</summary>
    public sealed class ImageOutput
    {
        /// <summary>Probabilities.</summary>
        [VectorType(10)]
        public float[] Score { get; set; } = [];
    }
}
