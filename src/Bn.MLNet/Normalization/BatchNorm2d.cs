using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Batch Normalization (Ioffe &amp; Szegedy, ICML 2015, Algorithm 1 in training, the inference transform of
/// Algorithm 2 in evaluation) over a 4D input N×C×H×W; statistics are per channel C over N, H and W (the paper's
/// convolutional variant, section 3.2). State-dict keys: <c>weight</c>, <c>bias</c>, <c>running_mean</c>,
/// <c>running_var</c>, <c>num_batches_tracked</c> (same as TorchSharp's <c>torch.nn.BatchNorm2d</c>).
/// </summary>
public class BatchNorm2d : BatchNormBase
{
    private static readonly int[] Ranks = { 4 };

    /// <summary>Creates the layer.</summary>
    /// <param name="numFeatures">Number of channels C (≥ 1).</param>
    /// <param name="eps">ε added to the variance (&gt; 0).</param>
    /// <param name="momentum">Moving-average factor in [0, 1]; null for a cumulative average.</param>
    /// <param name="affine">Whether to learn γ (starts at 1) and β (starts at 0).</param>
    /// <param name="trackRunningStats">Whether to keep running statistics for evaluation mode.</param>
    /// <exception cref="ArgumentException">numFeatures &lt; 1, eps ≤ 0, or momentum outside [0, 1].</exception>
    // RS0022: the layer is inheritable on purpose (BatchRenorm2d derives from it so that every handler of a BN
    // layer, folding and export included, handles a renormalized one); BatchNormBase exposes nothing protected.
#pragma warning disable RS0022
    public BatchNorm2d(long numFeatures, double eps = 1e-5, double? momentum = 0.1, bool affine = true, bool trackRunningStats = true)
        : base(nameof(BatchNorm2d), numFeatures, eps, momentum, affine, trackRunningStats)
    {
        RegisterComponents();
    }
#pragma warning restore RS0022

    /// <summary>For layers that are Batch Normalization at inference (<see cref="BatchRenorm2d"/>).</summary>
    private protected BatchNorm2d(string name, long numFeatures, double eps, double? momentum, bool affine, bool trackRunningStats, BatchRenormSchedule renorm)
        : base(name, numFeatures, eps, momentum, affine, trackRunningStats, renorm)
    {
        RegisterComponents();
    }

    private protected override int[] AcceptedRanks => Ranks;

    private protected override string ExpectedShape => "N×C×H×W (rank 4)";
}
