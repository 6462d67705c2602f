using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Batch Renormalization's correction for one training step (Ioffe, NeurIPS 2017, Algorithm 1): the running statistics
/// μ, σ² it corrects toward and the clipping limits of this step. Per channel, r = clip(σ_B/σ, 1/r_max, r_max) and
/// d = clip((μ_B − μ)/σ, −d_max, d_max) with σ_B = √(σ²_B + ε) and σ = √(σ² + ε); the output is γ·(x̂·r + d) + β, which is
/// Batch Normalization with γ' = γ·r and β' = β + γ·d. r and d are constants for backprop (the paper's stop_gradient).
/// </summary>
/// <param name="RunningMean">The running mean μ (per channel).</param>
/// <param name="RunningVar">The running variance σ² (per channel).</param>
/// <param name="RMax">This step's r_max (≥ 1).</param>
/// <param name="DMax">This step's d_max (≥ 0).</param>
internal sealed record RenormCorrection(Tensor RunningMean, Tensor RunningVar, double RMax, double DMax)
{
    /// <summary>r and d per channel from the batch's μ_B and biased σ²_B (managed values).</summary>
    public (double[] R, double[] D) Compute(double[] batchMean, double[] batchVar, double eps)
    {
        double[] mu = ChannelMath.Read(RunningMean), var = ChannelMath.Read(RunningVar);
        var r = new double[mu.Length];
        var d = new double[mu.Length];
        for (int i = 0; i < mu.Length; i++)
        {
            double sigma = Math.Sqrt(var[i] + eps);
            r[i] = Math.Clamp(Math.Sqrt(batchVar[i] + eps) / sigma, 1.0 / RMax, RMax);
            d[i] = Math.Clamp((batchMean[i] - mu[i]) / sigma, -DMax, DMax);
        }

        return (r, d);
    }

    /// <summary>r and d per channel as tensors (any device), from μ_B and invstd = 1/σ_B.</summary>
    public (Tensor R, Tensor D) Compute(Tensor batchMean, Tensor invstd, double eps)
    {
        Tensor invSigma = (RunningVar.to(invstd.dtype) + eps).rsqrt_();
        Tensor r = (invSigma / invstd).clamp_(1.0 / RMax, RMax);
        Tensor d = ((batchMean - RunningMean.to(batchMean.dtype)) * invSigma).clamp_(-DMax, DMax);
        return (r, d);
    }
}
