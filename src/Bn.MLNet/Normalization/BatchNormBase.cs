using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Shared implementation of <see cref="BatchNorm1d"/> and <see cref="BatchNorm2d"/> (and of their Batch Renormalization
/// subclasses): Batch Normalization (Ioffe &amp; Szegedy, ICML 2015). In training mode it applies the paper's Algorithm 1
/// (per-channel mini-batch mean and biased variance over every axis except the channel axis 1,
/// x̂ = (x − μ_B)/√(σ²_B + ε), y = γx̂ + β; with Batch Renormalization y = γ·(x̂·r + d) + β) through a custom autograd
/// function whose backward pass is the paper's closed-form gradient; in evaluation mode it applies the inference
/// transform with the running statistics. CPU tensors run our one-read kernels, tensors on other devices libtorch
/// operations.
/// </summary>
/// <remarks>
/// State-dict keys are exactly PyTorch's: <c>weight</c> (γ), <c>bias</c> (β), <c>running_mean</c>,
/// <c>running_var</c> and <c>num_batches_tracked</c> (int64 scalar), so weights interchange with TorchSharp's
/// native <c>torch.nn.BatchNorm1d/2d</c> under strict loading.
/// </remarks>
public abstract class BatchNormBase : nn.Module<Tensor, Tensor>
{
    // Declaration order = state-dict order, as in PyTorch.
    [ComponentName(Name = "weight")]
    private Parameter? _weight;

    [ComponentName(Name = "bias")]
    private Parameter? _bias;

    [ComponentName(Name = "running_mean")]
    private Tensor? _runningMean;

    [ComponentName(Name = "running_var")]
    private Tensor? _runningVar;

    [ComponentName(Name = "num_batches_tracked")]
    private Tensor? _numBatchesTracked;

    /// <summary>Set by <see cref="PopulationStatistics"/> while it collects per-batch statistics.</summary>
    internal PopulationAccumulator? Collector;

    private protected BatchNormBase(
        string name, long numFeatures, double eps, double? momentum, bool affine, bool trackRunningStats, BatchRenormSchedule? renorm = null)
        : base(Native.LibTorchSharpLoader.BeforeTorch(name))
    {
        RenormSchedule = renorm;
        if (numFeatures < 1)
            throw new ArgumentException($"numFeatures must be at least 1, got {numFeatures}.", nameof(numFeatures));
        if (!(eps > 0) || double.IsInfinity(eps))
            throw new ArgumentException($"eps must be a finite number > 0, got {eps}.", nameof(eps));
        if (momentum is { } m && !BatchNormChecks.IsValidMomentum(m))
            throw new ArgumentException($"momentum must lie in {BatchNormChecks.MomentumRange} (or be null for a cumulative average), got {m}.", nameof(momentum));

        NumFeatures = numFeatures;
        Eps = eps;
        Momentum = momentum;
        Affine = affine;
        TrackRunningStats = trackRunningStats;

        if (affine)
        {
            _weight = nn.Parameter(torch.ones(numFeatures));
            _bias = nn.Parameter(torch.zeros(numFeatures));
        }

        if (trackRunningStats)
        {
            _runningMean = torch.zeros(numFeatures);
            _runningVar = torch.ones(numFeatures);
            _numBatchesTracked = torch.tensor(0L);
        }
    }

    /// <summary>Number of channels C (axis 1 of the input).</summary>
    public long NumFeatures { get; }

    /// <summary>ε added to the variance before the square root (paper's Algorithm 1).</summary>
    public double Eps { get; }

    /// <summary>
    /// Factor m of the moving average running = (1 − m)·running + m·batch; null means the cumulative average
    /// over all batches seen (factor 1/<c>num_batches_tracked</c>).
    /// </summary>
    public double? Momentum { get; }

    /// <summary>Whether the layer has the learnable scale γ and shift β.</summary>
    public bool Affine { get; }

    /// <summary>
    /// Whether the layer keeps running statistics. When false, batch statistics are used in evaluation mode too.
    /// </summary>
    public bool TrackRunningStats { get; }

    /// <summary>The learnable scale γ (state key <c>weight</c>), or null when <see cref="Affine"/> is false.</summary>
    public Parameter? Gamma => _weight;

    /// <summary>The learnable shift β (state key <c>bias</c>), or null when <see cref="Affine"/> is false.</summary>
    public Parameter? Beta => _bias;

    /// <summary>Running estimate of E[x] per channel (buffer <c>running_mean</c>), or null when not tracked.</summary>
    public Tensor? RunningMean => _runningMean;

    /// <summary>Running estimate of Var[x] per channel (buffer <c>running_var</c>), or null when not tracked.</summary>
    public Tensor? RunningVar => _runningVar;

    /// <summary>Number of training batches seen (buffer <c>num_batches_tracked</c>, int64 scalar), or null when not tracked.</summary>
    public Tensor? NumBatchesTracked => _numBatchesTracked;

    /// <summary>Batch Renormalization's r_max/d_max schedule in training; null for Batch Normalization.</summary>
    private protected BatchRenormSchedule? RenormSchedule { get; }

    /// <summary>The training step the next forward pass is (<see cref="NumBatchesTracked"/>).</summary>
    private protected long NextStep => _numBatchesTracked!.item<long>();

    /// <summary>Input ranks accepted by the concrete layer.</summary>
    private protected abstract int[] AcceptedRanks { get; }

    /// <summary>Human-readable description of the accepted shapes, used in error messages.</summary>
    private protected abstract string ExpectedShape { get; }

    /// <summary>
    /// Normalizes <paramref name="input"/> (shape N×C×…) per channel: with the mini-batch statistics in training
    /// mode (and updating the running statistics), with the running statistics in evaluation mode.
    /// </summary>
    /// <param name="input">Input tensor; axis 1 is the channel axis and must have <see cref="NumFeatures"/> entries.</param>
    /// <returns>The normalized, scaled and shifted tensor, same shape as the input.</returns>
    /// <exception cref="ArgumentException">Wrong rank, wrong channel count, or a single value per channel in training.</exception>
    public override Tensor forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Validate(input);

        using var scope = torch.NewDisposeScope();
        bool useBatchStats = training || !TrackRunningStats;
        var settings = new BatchNormFunction.Settings { Eps = Eps, BatchStatistics = useBatchStats };
        if (!useBatchStats)
        {
            settings.Mean = _runningMean!;
            settings.Variance = _runningVar!;
        }
        else if (training && RenormSchedule is { } schedule)
        {
            long step = NextStep;
            settings.Renorm = new RenormCorrection(_runningMean!, _runningVar!, schedule.RMaxAt(step), schedule.DMaxAt(step));
        }

        Tensor output = BatchNormFunction.Apply(input, _weight, _bias, settings);
        if (training && TrackRunningStats)
            RecordBatchStatistics(settings.Mean!, settings.Variance!, input.numel() / NumFeatures);

        return output.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Hands a training batch's μ_B and biased σ²_B (over <paramref name="m"/> values per channel) to the population
    /// statistics collector when one is attached, else updates the running statistics.
    /// </summary>
    internal void RecordBatchStatistics(Tensor mean, Tensor biasedVar, long m)
    {
        if (Collector is { } collector)
            collector.Add(mean, biasedVar, m);
        else
            UpdateRunningStatistics(mean, biasedVar, m);
    }

    internal void UpdateRunningStatistics(Tensor mean, Tensor biasedVar, long m)
    {
        using var noGrad = torch.no_grad();
        double unbias = (double)m / (m - 1);
        if (ChannelMath.Supports(_runningMean!) && ChannelMath.Supports(_runningVar!) && ChannelMath.Supports(mean) && ChannelMath.Supports(biasedVar)
            && ChannelMath.IsCpuInt64Scalar(_numBatchesTracked!))
        {
            long count = ChannelMath.Increment(_numBatchesTracked!);
            double factor = Momentum ?? 1.0 / count;
            // running = (1 − f)·running + f·batch, per channel in managed code (C values; no kernel dispatches).
            double[] runMean = ChannelMath.Read(_runningMean!), runVar = ChannelMath.Read(_runningVar!);
            double[] batchMean = ChannelMath.Read(mean), batchVar = ChannelMath.Read(biasedVar);
            for (int i = 0; i < runMean.Length; i++)
            {
                runMean[i] = ((1 - factor) * runMean[i]) + (factor * batchMean[i]);
                runVar[i] = ((1 - factor) * runVar[i]) + (factor * unbias * batchVar[i]);
            }

            ChannelMath.Write(_runningMean!, runMean);
            ChannelMath.Write(_runningVar!, runVar);
            return;
        }

        _numBatchesTracked!.add_(1);
        double f = Momentum ?? 1.0 / _numBatchesTracked.item<long>();
        using var unbiased = biasedVar * unbias;
        _runningMean!.mul_(1 - f).add_(mean.to(_runningMean.dtype), f);
        _runningVar!.mul_(1 - f).add_(unbiased.to(_runningVar.dtype), f);
    }

    /// <summary>Replaces the running statistics (used by <see cref="PopulationStatistics"/>).</summary>
    internal void SetRunningStatistics(Tensor mean, Tensor variance)
    {
        using var noGrad = torch.no_grad();
        _runningMean!.copy_(mean);
        _runningVar!.copy_(variance);
    }

    internal void Validate(Tensor input)
    {
        long[] dims = input.shape;
        int rank = dims.Length;
        string Shape() => "[" + string.Join(", ", dims) + "]";   // built only for an error message
        if (!AcceptedRanks.Contains(rank))
            throw new ArgumentException($"{GetType().Name} expects input of shape {ExpectedShape}, got rank {rank} input of shape {Shape()}.", nameof(input));
        if (dims[1] != NumFeatures)
            throw new ArgumentException($"{GetType().Name} was built for {NumFeatures} channels (axis 1), but the input of shape {Shape()} has {dims[1]} channels.", nameof(input));
        if (input.dtype is not (ScalarType.Float32 or ScalarType.Float64))
            throw new ArgumentException($"{GetType().Name} expects a float32 or float64 input, got {input.dtype} on {input.device_type}.", nameof(input));
        long perChannel = dims.Aggregate(1L, (p, d) => p * d) / NumFeatures;
        if (training && perChannel < 2)
            throw new ArgumentException($"Batch Normalization needs more than one value per channel in training (the mini-batch variance of a single value is undefined); input of shape {Shape()} has {perChannel} value(s) per channel.", nameof(input));
        if (perChannel < 1)
            throw new ArgumentException($"{GetType().Name} got an empty input of shape {Shape()}.", nameof(input));
    }
}
