using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Batch Renormalization (Ioffe, NeurIPS 2017) over a 2D input N×C or a 3D input N×C×L, per channel C over every other axis. In training it
/// normalizes with the mini-batch statistics and corrects toward the moving averages: y = γ·(x̂·r + d) + β with
/// r = clip(σ_B/σ, 1/r_max, r_max) and d = clip((μ_B − μ)/σ, −d_max, d_max) treated as constants in backprop
/// (closed-form backward), the limits following <see cref="Schedule"/> over the layer's training steps
/// (<c>num_batches_tracked</c>). In evaluation it is exactly <see cref="BatchNorm1d"/> with the moving averages.
/// </summary>
/// <remarks>
/// It derives from <see cref="BatchNorm1d"/> and has the same state dict (<c>weight</c>, <c>bias</c>,
/// <c>running_mean</c>, <c>running_var</c>, <c>num_batches_tracked</c>), so everything that handles a trained
/// <see cref="BatchNorm1d"/> (folding, population statistics, export) handles this layer, and its weights load into
/// a Batch Normalization layer and back under strict loading. The running statistics are updated exactly as Batch
/// Normalization updates them (moving average of μ_B and of the unbiased σ²_B with <see cref="BatchNormBase.Momentum"/>).
/// </remarks>
public sealed class BatchRenorm1d : BatchNorm1d
{
    /// <summary>Creates the layer (affine, with running statistics, which Batch Renormalization needs).</summary>
    /// <param name="numFeatures">Number of channels C (≥ 1).</param>
    /// <param name="eps">ε added to the variance (&gt; 0).</param>
    /// <param name="momentum">Moving-average factor in [0, 1]; null for a cumulative average.</param>
    /// <param name="schedule">The r_max/d_max schedule. Default null: <c>new BatchRenormSchedule()</c> (r_max 1 → 3, d_max 0 → 5 over 2,000 steps).</param>
    /// <exception cref="ArgumentException">numFeatures &lt; 1, eps ≤ 0, or momentum outside [0, 1].</exception>
    public BatchRenorm1d(long numFeatures, double eps = 1e-5, double? momentum = 0.1, BatchRenormSchedule? schedule = null)
        : base(nameof(BatchRenorm1d), numFeatures, eps, momentum, affine: true, trackRunningStats: true, schedule ?? new BatchRenormSchedule())
    {
    }

    /// <summary>The clipping limits against the training step.</summary>
    public BatchRenormSchedule Schedule => RenormSchedule!;

    /// <summary>r_max for the next training step (from <see cref="BatchNormBase.NumBatchesTracked"/>).</summary>
    public double CurrentRMax => Schedule.RMaxAt(NextStep);

    /// <summary>d_max for the next training step (from <see cref="BatchNormBase.NumBatchesTracked"/>).</summary>
    public double CurrentDMax => Schedule.DMaxAt(NextStep);
}
