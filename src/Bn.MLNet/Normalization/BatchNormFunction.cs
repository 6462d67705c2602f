using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Custom autograd function for y = γ·(x − μ)/√(σ² + ε) + β with the paper's closed-form backward
/// (Ioffe &amp; Szegedy 2015, the chain rule given below Algorithm 1). With batch statistics (training, or no running
/// statistics), μ = μ_B and σ² = σ²_B are the per-channel mean and biased variance of x itself, computed here, so the
/// gradient flows through them; with fixed running statistics the transform is affine in x and runs as ordinary
/// differentiable operations (no custom node).
/// </summary>
/// <remarks>
/// Cost model (full-size passes over N×C×… data, all in <see cref="ChannelKernels"/>, which reads and writes tensor
/// memory directly). Forward: one read of x for μ_B and σ²_B (shifted sums), then y = x·scale + shift in one pass
/// (scale = γ·invstd and shift = β − μ·scale per channel). Only x (the input, alive anyway) is kept as a tensor, and μ,
/// invstd and γ as managed values, so the layer holds no full-size tensor of its own between forward and backward.
/// Backward: Σ∂ℓ/∂y and Σ∂ℓ/∂y·(x − μ) per channel in one read, then ∂ℓ/∂x = a·∂ℓ/∂y + b·x + d with per-channel a, b,
/// d in one pass. Per-channel arithmetic runs in managed code, and no implicit <c>Scalar</c> is created per call: each
/// would be a small native allocation freed only by a finalizer, and such allocations fragment the native heap between
/// the large tensors.
/// </remarks>
internal sealed class BatchNormFunction : torch.autograd.SingleTensorFunction<BatchNormFunction>
{
    /// <summary>
    /// Non-tensor argument (kept out of the autograd graph's inputs). For batch statistics the forward pass writes
    /// μ_B and the biased σ²_B (per channel, detached) into <see cref="Mean"/> and <see cref="Variance"/>.
    /// </summary>
    internal sealed class Settings
    {
        public Tensor? Mean;
        public Tensor? Variance;
        public double Eps;
        public bool BatchStatistics;

        /// <summary>Whether a backward pass can follow (grad mode on and an input requires grad); set by <see cref="Apply"/>.</summary>
        public bool NeedsBackward;
    }

    public override string Name => nameof(BatchNormFunction);

    /// <summary>
    /// Applies the transform. With <see cref="Settings.BatchStatistics"/> it goes through this autograd function; with
    /// fixed statistics (<see cref="Settings.Mean"/> and <see cref="Settings.Variance"/> given) it is the affine map
    /// y = x·scale + shift built from ordinary operations, whose autograd gradient is the closed form
    /// ∂ℓ/∂x = ∂ℓ/∂y·γ·invstd.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor? gamma, Tensor? beta, Settings settings)
    {
        if (settings.BatchStatistics)
        {
            settings.NeedsBackward = torch.is_grad_enabled()
                && (x.requires_grad || (gamma?.requires_grad ?? false) || (beta?.requires_grad ?? false));
            return apply(x, gamma!, beta!, settings);
        }

        using var scope = torch.NewDisposeScope();
        bool needsGrad = torch.is_grad_enabled()
            && (x.requires_grad || (gamma?.requires_grad ?? false) || (beta?.requires_grad ?? false));
        if (!needsGrad && ChannelMath.Supports(settings.Mean!) && ChannelMath.Supports(settings.Variance!))
        {
            // Inference: scale and shift per channel in managed code, one pass over x (no gradient flows anywhere).
            var (scaleValues, shiftValues, _) = Coefficients(
                ChannelMath.Read(settings.Mean!), ChannelMath.Read(settings.Variance!), ReadOrNull(gamma), ReadOrNull(beta), settings.Eps);
            return ChannelKernels.Combine(null, null, x, scaleValues, shiftValues).MoveToOuterDisposeScope();
        }

        long[] shape = ChannelMath.BroadcastShape(x);
        using var eps = settings.Eps.ToScalar();
        var invstd = AsType(settings.Variance!, x).add(eps).rsqrt_();
        var (scale, shift) = ScaleShift(AsType(settings.Mean!, x), invstd, gamma, beta);
        return torch.addcmul(shift.view(shape), x, scale.view(shape), One).MoveToOuterDisposeScope();
    }

    /// <summary>Per channel: scale = γ·invstd, shift = β − μ·scale, and invstd = 1/√(σ² + ε).</summary>
    private static (double[] Scale, double[] Shift, double[] InvStd) Coefficients(double[] mu, double[] var, double[]? g, double[]? b, double eps)
    {
        int c = mu.Length;
        var invstds = new double[c];
        var scale = new double[c];
        var shift = new double[c];
        for (int i = 0; i < c; i++)
        {
            double invstd = 1.0 / Math.Sqrt(var[i] + eps);
            invstds[i] = invstd;
            scale[i] = (g is null ? 1.0 : g[i]) * invstd;
            shift[i] = (b is null ? 0.0 : b[i]) - (mu[i] * scale[i]);
        }

        return (scale, shift, invstds);
    }

    private static double[]? ReadOrNull(Tensor? t) => t is null ? null : ChannelMath.Read(t);

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var gamma = vars[1] as Tensor;
        var beta = vars[2] as Tensor;
        var s = (Settings)vars[3];
        int c = (int)x.shape[1];

        // μ_B and the biased σ²_B per channel, usually in one read of x (ChannelKernels.Moments), no full-size temporary.
        var (mean, variance) = ChannelKernels.Moments(x);
        s.Mean = ChannelMath.Create(mean, new long[] { c }, x.dtype);
        s.Variance = ChannelMath.Create(variance, new long[] { c }, x.dtype);

        // Per channel: invstd = 1/√(σ² + ε), scale = γ·invstd, shift = β − μ·scale; then y = x·scale + shift, one pass.
        double[]? g = ReadOrNull(gamma);
        var (scale, shift, invstd) = Coefficients(mean, variance, g, ReadOrNull(beta), s.Eps);
        var y = ChannelKernels.Combine(null, null, x, scale, shift);

        // For backward: x (alive anyway as the previous layer's output) as a saved variable, released with the graph;
        // μ, invstd and γ as managed values.
        if (s.NeedsBackward)
        {
            ctx.save_for_backward(new List<Tensor> { x });
            ctx.save_data("state", new BackwardState(mean, invstd, g));
        }
        return y;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        ReleaseReturnedGradients();
        var state = (BackwardState)ctx.get_data("state");
        Tensor x = ctx.get_saved_variables()[0];
        double[]? g = state.Gamma;
        bool affine = g is not null;
        int c = (int)x.shape[1];
        double m = x.numel() / c;
        var dy = gradOutput;

        // Σ ∂ℓ/∂y and Σ ∂ℓ/∂y·(x − μ) per channel, in one read of ∂ℓ/∂y and x. Per-channel arrays are pooled.
        using var rented = new ChannelKernels.Rented();
        double[] sDy = rented.Take<double>(c), sDyCentred = rented.Take<double>(c), sumDyXhat = rented.Take<double>(c);
        double[] a = rented.Take<double>(c), bx = rented.Take<double>(c), d = rented.Take<double>(c);
        ChannelKernels.Reduce(dy, x, null, state.Mean, sDy, sDyCentred);

        // ∂ℓ/∂β = Σ ∂ℓ/∂y ;  ∂ℓ/∂γ = Σ ∂ℓ/∂y·x̂ = invstd·Σ ∂ℓ/∂y·(x − μ)
        // Paper:  ∂ℓ/∂σ² = Σ ∂ℓ/∂x̂·(x − μ)·(−½)(σ² + ε)^(−3/2),   ∂ℓ/∂μ = −invstd·Σ ∂ℓ/∂x̂   (the σ² term vanishes: Σ(x − μ) = 0)
        //         ∂ℓ/∂x  = ∂ℓ/∂x̂·invstd + ∂ℓ/∂σ²·2(x − μ)/m + ∂ℓ/∂μ/m,   with ∂ℓ/∂x̂ = ∂ℓ/∂y·γ.
        // With k = γ·invstd this is k·(∂ℓ/∂y − Σ∂ℓ/∂y/m − x̂·Σ∂ℓ/∂y·x̂/m) = a·∂ℓ/∂y + b·x + d, per channel:
        //         a = k,   b = −k·invstd·Σ∂ℓ/∂y·x̂/m,   d = −k·Σ∂ℓ/∂y/m − b·μ.
        for (int i = 0; i < c; i++)
        {
            double mu = state.Mean[i], invstd = state.InvStd[i];
            sumDyXhat[i] = invstd * sDyCentred[i];
            a[i] = (g is null ? 1.0 : g[i]) * invstd;
            bx[i] = -a[i] * invstd * sumDyXhat[i] / m;
            d[i] = (-a[i] * sDy[i] / m) - (bx[i] * mu);
        }

        var dx = ChannelKernels.Combine(dy, a, x, bx, d);
        Tensor? dGamma = affine ? ChannelMath.Create(sumDyXhat.AsSpan(0, c), new long[] { c }, x.dtype) : null;
        Tensor? dBeta = affine ? ChannelMath.Create(sDy.AsSpan(0, c), new long[] { c }, x.dtype) : null;

        // Release our handles to x and ∂ℓ/∂y now (libtorch holds its own references while it needs them).
        x.Dispose();
        dy.Dispose();
        var grads = new List<Tensor> { dx, dGamma!, dBeta!, null! };
        (t_returned ??= new List<Tensor>()).AddRange(grads.Where(t => t is not null));
        return grads;
    }

    /// <summary>Managed state kept between forward and backward: μ and invstd per channel, and γ.</summary>
    private sealed class BackwardState(double[] mean, double[] invstd, double[]? gamma)
    {
        public readonly double[] Mean = mean;
        public readonly double[] InvStd = invstd;
        public readonly double[]? Gamma = gamma;
    }

    // Gradients handed to libtorch by the previous backward call on this thread. libtorch copies its references as
    // soon as backward returns, so these managed handles only keep the gradients alive until the step's dispose scope
    // ends; releasing them at the next backward call lets libtorch free each gradient as soon as it is consumed.
    [ThreadStatic]
    private static List<Tensor>? t_returned;

    private static void ReleaseReturnedGradients()
    {
        if (t_returned is null)
            return;
        foreach (var t in t_returned)
            t.Dispose();
        t_returned.Clear();
    }

    private static readonly Scalar One = 1.0.ToScalar();

    /// <summary>Per-channel scale γ·invstd and shift β − μ·γ·invstd (γ = 1 and β = 0 when absent).</summary>
    private static (Tensor Scale, Tensor Shift) ScaleShift(Tensor mean, Tensor invstd, Tensor? gamma, Tensor? beta)
    {
        var scale = gamma is null ? invstd : gamma * invstd;
        var shift = beta is null ? (mean * scale).neg_() : beta - (mean * scale);
        return (scale, shift);
    }

    private static Tensor AsType(Tensor t, Tensor like) => t.dtype == like.dtype ? t : t.to_type(like.dtype);
}
