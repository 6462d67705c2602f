using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Batch Normalization (and Batch Renormalization) in training on CPU tensors, through <see cref="ChannelKernels"/>:
/// forward = one read of x for μ_B and σ²_B (shifted sums) + one write of y = x·scale + shift; backward = one read for
/// Σ∂ℓ/∂y and Σ∂ℓ/∂y·(x − μ) + one write of ∂ℓ/∂x = a·∂ℓ/∂y + b·x + d. Only x (the input, alive anyway) is kept as a
/// tensor for backward; μ, invstd, γ and Batch Renormalization's r and d are kept as managed values, so the layer holds
/// no full-size tensor of its own between forward and backward.
/// </summary>
/// <remarks>
/// Per-channel arithmetic runs in managed code, and no implicit <c>Scalar</c> is created per call: each would be a small
/// native allocation freed only by a finalizer, and such allocations fragment the native heap between the large tensors.
/// </remarks>
internal static class KernelPath
{
    /// <summary>Whether this path can run on <paramref name="x"/>: a float32 or float64 CPU tensor.</summary>
    public static bool Applies(Tensor x) => x.device_type == DeviceType.CPU && x.dtype is ScalarType.Float32 or ScalarType.Float64;

    /// <summary>Managed state kept between forward and backward.</summary>
    public sealed record State(double[] Mean, double[] InvStd, double[]? Gamma, double[]? R, double[]? D);

    /// <summary>
    /// y = γ·(x̂·r + d) + β with x̂ from the batch statistics (r = 1, d = 0 without <paramref name="renorm"/>); writes μ_B and
    /// the biased σ²_B into <paramref name="batchMean"/> and <paramref name="batchVariance"/>.
    /// </summary>
    public static (Tensor Y, State State) Forward(
        Tensor x, Tensor? gamma, Tensor? beta, double eps, RenormCorrection? renorm, out Tensor batchMean, out Tensor batchVariance)
    {
        int c = (int)x.shape[1];
        var (mean, variance) = ChannelKernels.Moments(x);
        batchMean = ChannelMath.Create(mean, new long[] { c }, x.dtype);
        batchVariance = ChannelMath.Create(variance, new long[] { c }, x.dtype);

        double[]? g = ReadOrNull(gamma), b = ReadOrNull(beta), r = null, d = null;
        if (renorm is not null)
            (r, d) = renorm.Compute(mean, variance, eps);
        var (scale, shift, invstd) = Coefficients(mean, variance, g, b, r, d, eps);
        return (ChannelKernels.Combine(null, null, x, scale, shift), new State(mean, invstd, g, r, d));
    }

    /// <summary>
    /// The inference transform with fixed statistics (no gradient): y = x·scale + shift in one pass.
    /// </summary>
    public static Tensor Affine(Tensor x, Tensor mean, Tensor variance, Tensor? gamma, Tensor? beta, double eps)
    {
        var (scale, shift, _) = Coefficients(ChannelMath.Read(mean), ChannelMath.Read(variance), ReadOrNull(gamma), ReadOrNull(beta), null, null, eps);
        return ChannelKernels.Combine(null, null, x, scale, shift);
    }

    /// <summary>
    /// ∂ℓ/∂x, ∂ℓ/∂γ and ∂ℓ/∂β. The paper's chain rule with ∂ℓ/∂x̂ = ∂ℓ/∂y·γ·r (r and d constant):
    ///   ∂ℓ/∂σ² = Σ ∂ℓ/∂x̂·(x − μ)·(−½)(σ² + ε)^(−3/2),   ∂ℓ/∂μ = −invstd·Σ ∂ℓ/∂x̂   (the σ² term vanishes: Σ(x − μ) = 0)
    ///   ∂ℓ/∂x  = ∂ℓ/∂x̂·invstd + ∂ℓ/∂σ²·2(x − μ)/m + ∂ℓ/∂μ/m.
    /// With k = γ·r·invstd this is k·(∂ℓ/∂y − Σ∂ℓ/∂y/m − x̂·Σ∂ℓ/∂y·x̂/m) = a·∂ℓ/∂y + b·x + d per channel:
    ///   a = k,   b = −k·invstd·Σ∂ℓ/∂y·x̂/m,   d = −k·Σ∂ℓ/∂y/m − b·μ;
    /// ∂ℓ/∂β = Σ ∂ℓ/∂y and ∂ℓ/∂γ = Σ ∂ℓ/∂y·(x̂·r + d) = r·invstd·Σ ∂ℓ/∂y·(x − μ) + d·Σ ∂ℓ/∂y.
    /// </summary>
    public static (Tensor Dx, Tensor? DGamma, Tensor? DBeta) Backward(State state, Tensor x, Tensor dy)
    {
        int c = (int)x.shape[1];
        double m = x.numel() / c;
        double[]? g = state.Gamma;
        using var rented = new ChannelKernels.Rented();
        double[] sDy = rented.Take<double>(c), sDyCentred = rented.Take<double>(c), dGamma = rented.Take<double>(c);
        double[] a = rented.Take<double>(c), bx = rented.Take<double>(c), d = rented.Take<double>(c);
        ChannelKernels.Reduce(dy, x, null, state.Mean, sDy, sDyCentred);
        for (int i = 0; i < c; i++)
        {
            double mu = state.Mean[i], invstd = state.InvStd[i], r = state.R?[i] ?? 1.0;
            double sumDyXhat = invstd * sDyCentred[i];
            dGamma[i] = (r * sumDyXhat) + ((state.D?[i] ?? 0.0) * sDy[i]);
            a[i] = (g is null ? 1.0 : g[i]) * r * invstd;
            bx[i] = -a[i] * invstd * sumDyXhat / m;
            d[i] = (-a[i] * sDy[i] / m) - (bx[i] * mu);
        }

        Tensor dx = ChannelKernels.Combine(dy, a, x, bx, d);
        bool affine = g is not null;
        return (dx,
            affine ? ChannelMath.Create(dGamma.AsSpan(0, c), new long[] { c }, x.dtype) : null,
            affine ? ChannelMath.Create(sDy.AsSpan(0, c), new long[] { c }, x.dtype) : null);
    }

    /// <summary>
    /// Per channel: invstd = 1/√(σ² + ε), and with γ' = γ·r and β' = β + γ·d (γ = 1, β = 0, r = 1, d = 0 when absent),
    /// scale = γ'·invstd and shift = β' − μ·scale.
    /// </summary>
    private static (double[] Scale, double[] Shift, double[] InvStd) Coefficients(
        double[] mu, double[] var, double[]? g, double[]? b, double[]? r, double[]? d, double eps)
    {
        int c = mu.Length;
        var invstds = new double[c];
        var scale = new double[c];
        var shift = new double[c];
        for (int i = 0; i < c; i++)
        {
            double invstd = 1.0 / Math.Sqrt(var[i] + eps);
            double gamma = g is null ? 1.0 : g[i];
            invstds[i] = invstd;
            scale[i] = gamma * (r is null ? 1.0 : r[i]) * invstd;
            shift[i] = (b is null ? 0.0 : b[i]) + (d is null ? 0.0 : gamma * d[i]) - (mu[i] * scale[i]);
        }

        return (scale, shift, invstds);
    }

    private static double[]? ReadOrNull(Tensor? t) => t is null ? null : ChannelMath.Read(t);
}
