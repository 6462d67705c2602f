using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Batch Normalization (and Batch Renormalization) in training with libtorch operations, for tensors the CPU kernels do
/// not take (another device, or when forced for tests): two-pass batch statistics and the same closed-form backward as
/// <see cref="KernelPath"/>, keeping x̂ as a full-size tensor between forward and backward.
/// </summary>
internal static class TensorPath
{
    /// <summary>Tensors kept between forward and backward (r and d: ones and zeros without renormalization).</summary>
    public sealed record State(Tensor XHat, Tensor InvStd, Tensor R, Tensor D, Tensor? Gamma, long[] Dims, long Count);

    /// <summary>The non-tensor part of <see cref="State"/>: reduction axes, values per channel, whether γ is there.</summary>
    public sealed record Shape(long[] Dims, long Count, bool Affine);

    /// <summary>y = γ·(x̂·r + d) + β; writes μ_B and the biased σ²_B into <paramref name="batchMean"/> and <paramref name="batchVariance"/>.</summary>
    public static (Tensor Y, State State) Forward(
        Tensor x, Tensor? gamma, Tensor? beta, double eps, RenormCorrection? renorm, out Tensor batchMean, out Tensor batchVariance)
    {
        long[] dims = ReduceDims(x.dim());
        long[] shape = ChannelMath.BroadcastShape(x);
        long m = x.numel() / x.shape[1];
        Tensor mean = x.mean(dims, keepdim: true);
        Tensor xhat = x - mean;                    // becomes x̂ in place
        Tensor y = xhat * xhat;                    // scratch for the squared deviations, then the output
        Tensor variance = y.sum(dims).div_(m);
        Tensor invstd = (variance + eps).rsqrt_();
        xhat.mul_(invstd.view(shape));
        batchMean = mean.view(-1);
        batchVariance = variance;

        var (r, d) = renorm is null ? (torch.ones_like(invstd), torch.zeros_like(invstd)) : renorm.Compute(batchMean, invstd, eps);
        // y = γ·(x̂·r + d) + β = (γ·r)·x̂ + (γ·d + β): one fused pass over the full-size tensor.
        Tensor scale = gamma is null ? r : gamma * r;
        Tensor shift = gamma is null ? d : gamma * d;
        if (beta is not null)
            shift = shift + beta;
        y.copy_(shift.view(shape).expand_as(y)).addcmul_(xhat, scale.view(shape), 1);
        return (y, new State(xhat, invstd, r, d, gamma, dims, m));
    }

    /// <summary>∂ℓ/∂x = a·(∂ℓ/∂y − Σ∂ℓ/∂y/m − x̂·Σ(∂ℓ/∂y·x̂)/m) with a = γ·r·invstd; ∂ℓ/∂γ = r·Σ∂ℓ/∂y·x̂ + d·Σ∂ℓ/∂y; ∂ℓ/∂β = Σ∂ℓ/∂y.</summary>
    public static (Tensor Dx, Tensor? DGamma, Tensor? DBeta) Backward(State s, Tensor dy)
    {
        long[] shape = ChannelMath.BroadcastShape(s.XHat);
        double m = s.Count;
        Tensor sumDy = dy.sum(s.Dims);
        Tensor dx = dy * s.XHat;                   // scratch for the product, reused as ∂ℓ/∂x below
        Tensor sumDyXhat = dx.sum(s.Dims);
        Tensor a = (s.Gamma is null ? s.R : s.Gamma * s.R) * s.InvStd;
        Tensor constant = -a * sumDy / m;
        Tensor coefXhat = -a * sumDyXhat / m;
        dx.copy_(constant.view(shape).expand_as(dx)).addcmul_(s.XHat, coefXhat.view(shape), 1).addcmul_(dy, a.view(shape), 1);
        bool affine = s.Gamma is not null;
        return (dx, affine ? (s.R * sumDyXhat) + (s.D * sumDy) : null, affine ? sumDy : null);
    }

    /// <summary>The inference transform with fixed statistics: y = x·scale + shift, as differentiable operations.</summary>
    public static Tensor Affine(Tensor x, Tensor mean, Tensor variance, Tensor? gamma, Tensor? beta, double eps)
    {
        long[] shape = ChannelMath.BroadcastShape(x);
        Tensor invstd = (variance.to(x.dtype) + eps).rsqrt_();
        Tensor scale = gamma is null ? invstd : gamma * invstd;
        Tensor shift = beta is null ? (mean.to(x.dtype) * scale).neg_() : beta - (mean.to(x.dtype) * scale);
        return torch.addcmul(shift.view(shape), x, scale.view(shape), 1);
    }

    /// <summary>Every axis but the channel axis 1.</summary>
    public static long[] ReduceDims(long rank)
    {
        var dims = new List<long> { 0 };
        for (long d = 2; d < rank; d++)
            dims.Add(d);
        return dims.ToArray();
    }
}
