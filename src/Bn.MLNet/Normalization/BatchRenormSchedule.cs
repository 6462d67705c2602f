namespace Bn.MLNet.Normalization;

/// <summary>
/// The clipping limits of Batch Renormalization (Ioffe, NeurIPS 2017) against the training step t: r is clipped to
/// [1/r_max(t), r_max(t)] and d to [−d_max(t), d_max(t)], with r_max(t) = 1 + (<see cref="RMax"/> − 1)·min(1, t/T) and
/// d_max(t) = <see cref="DMax"/>·min(1, t/T), T = <see cref="WarmupSteps"/>. At t = 0 the layer is plain Batch
/// Normalization (r = 1, d = 0); after T steps the limits stay at their final values.
/// </summary>
/// <remarks>
/// The paper kept r_max = 1 and d_max = 0 for the first 5,000 steps and then relaxed them to 3 and 5 by about 40,000
/// steps, in runs of well over 100,000 steps. Our runs are 10 to 100 times shorter (the default Fashion-MNIST CNN trains
/// about 4,700 steps in 10 epochs), so the default relaxes linearly from the first step over
/// <see cref="DefaultWarmupSteps"/> steps. The early steps still see limits close to 1 and 0 (r_max ≈ 1.1, d_max ≈ 0.25
/// at step 100), which leaves the moving averages time to settle from their initial values 0 and 1 (with momentum 0.1
/// they do within about 50 steps) before the correction toward them becomes large.
/// </remarks>
public sealed class BatchRenormSchedule
{
    /// <summary>Final r_max, the paper's value: 3.</summary>
    public const double DefaultRMax = 3.0;

    /// <summary>Final d_max, the paper's value: 5.</summary>
    public const double DefaultDMax = 5.0;

    /// <summary>Steps over which r_max and d_max relax linearly from 1 and 0 to their final values: 2,000.</summary>
    public const long DefaultWarmupSteps = 2000;

    /// <summary>Creates a schedule.</summary>
    /// <param name="rMax">Final r_max (≥ 1; 1 keeps r = 1). Default <see cref="DefaultRMax"/>.</param>
    /// <param name="dMax">Final d_max (≥ 0; 0 keeps d = 0). Default <see cref="DefaultDMax"/>.</param>
    /// <param name="warmupSteps">Steps of the linear relaxation (≥ 0; 0 uses the final limits from the first step). Default <see cref="DefaultWarmupSteps"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range; its name is the parameter name.</exception>
    public BatchRenormSchedule(double rMax = DefaultRMax, double dMax = DefaultDMax, long warmupSteps = DefaultWarmupSteps)
    {
        Validate(rMax, dMax, warmupSteps, nameof(rMax), nameof(dMax), nameof(warmupSteps), field => field);
        RMax = rMax;
        DMax = dMax;
        WarmupSteps = warmupSteps;
    }

    /// <summary>Final r_max (reached after <see cref="WarmupSteps"/> steps).</summary>
    public double RMax { get; }

    /// <summary>Final d_max (reached after <see cref="WarmupSteps"/> steps).</summary>
    public double DMax { get; }

    /// <summary>Steps T of the linear relaxation from r_max = 1, d_max = 0.</summary>
    public long WarmupSteps { get; }

    /// <summary>r_max at training step <paramref name="step"/> (0-based).</summary>
    public double RMaxAt(long step) => 1 + (RMax - 1) * Progress(step);

    /// <summary>d_max at training step <paramref name="step"/> (0-based).</summary>
    public double DMaxAt(long step) => DMax * Progress(step);

    private double Progress(long step) => WarmupSteps == 0 ? 1.0 : Math.Clamp((double)step / WarmupSteps, 0.0, 1.0);

    /// <summary>
    /// Throws <see cref="ArgumentOutOfRangeException"/> naming the offending option (<paramref name="name"/> of its field)
    /// when r_max &lt; 1, d_max &lt; 0, the warm-up is negative, or a value is not finite.
    /// </summary>
    internal static void Validate(double rMax, double dMax, long warmupSteps, string rMaxName, string dMaxName, string warmupName, Func<string, string> name)
    {
        if (!(rMax >= 1) || !double.IsFinite(rMax))
            throw new ArgumentOutOfRangeException(rMaxName, rMax, $"{name(rMaxName)} (Batch Renormalization's final r_max) must be a finite number ≥ 1, got {rMax}.");
        if (!(dMax >= 0) || !double.IsFinite(dMax))
            throw new ArgumentOutOfRangeException(dMaxName, dMax, $"{name(dMaxName)} (Batch Renormalization's final d_max) must be a finite number ≥ 0, got {dMax}.");
        if (warmupSteps < 0)
            throw new ArgumentOutOfRangeException(warmupName, warmupSteps, $"{name(warmupName)} (Batch Renormalization's warm-up in training steps) must be ≥ 0, got {warmupSteps}.");
    }
}
