using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Custom autograd function for y = γ·(x − μ)/√(σ² + ε) + β with the paper's closed-form backward
/// (Ioffe &amp; Szegedy 2015, the chain rule given below Algorithm 1). With batch statistics (training, or no running
/// statistics), μ = μ_B and σ² = σ²_B are the per-channel mean and biased variance of x itself, computed here, so the
/// gradient flows through them; with fixed running statistics the transform is affine in x.
/// </summary>
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
        public long[] ReduceDims = Array.Empty<long>();
        public bool BatchStatistics;
    }

    public override string Name => nameof(BatchNormFunction);

    public static Tensor Apply(Tensor x, Tensor? gamma, Tensor? beta, Settings settings)
        => apply(x, gamma!, beta!, settings);

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var gamma = vars[1] as Tensor;
        var beta = vars[2] as Tensor;
        var s = (Settings)vars[3];
        long[] shape = BroadcastShape(x);
        long m = x.numel() / x.shape[1];

        // Only two full-size tensors are allocated: x̂ (saved for backward) and y (which first serves as scratch
        // for the squared deviations).
        Tensor xhat;      // x − μ, becomes x̂ in place
        Tensor variance;
        Tensor y;
        if (s.BatchStatistics)
        {
            // Two-pass statistics: μ_B = Σx/m, then σ²_B = Σ(x − μ_B)²/m on the centred values (no cancellation).
            var mean = x.mean(s.ReduceDims, keepdim: true);
            xhat = x - mean;
            y = xhat * xhat;
            variance = y.sum(s.ReduceDims).div_(m);
            s.Mean = mean.view(-1);
            s.Variance = variance;
        }
        else
        {
            xhat = x - s.Mean!.view(shape);
            variance = s.Variance!;
            y = torch.empty_like(x);
        }

        // invstd = 1/√(σ² + ε); x̂ = (x − μ)·invstd; y = γ·x̂ + β
        var invstd = (variance + s.Eps).rsqrt_();
        xhat.mul_(invstd.view(shape));
        if (gamma is null)
            y.copy_(xhat);
        else
            y.copy_(beta!.view(shape).expand_as(y)).addcmul_(xhat, gamma.view(shape), 1);

        ctx.save_for_backward(new List<Tensor> { xhat, invstd, gamma! });
        ctx.save_data("dims", s.ReduceDims);
        ctx.save_data("batch", s.BatchStatistics);
        ctx.save_data("m", m);
        ctx.save_data("affine", gamma is not null);
        return y;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var xhat = saved[0];
        var invstd = saved[1];
        bool affine = (bool)ctx.get_data("affine");
        var gamma = affine ? saved[2] : null;
        var dims = (long[])ctx.get_data("dims");
        bool batch = (bool)ctx.get_data("batch");
        double m = (long)ctx.get_data("m");
        long[] shape = BroadcastShape(xhat);
        var dy = gradOutput;

        // ∂ℓ/∂β = Σ ∂ℓ/∂y ;  ∂ℓ/∂γ = Σ ∂ℓ/∂y · x̂   (sums over every axis but C)
        var sumDy = dy.sum(dims);
        var dx = dy * xhat;               // scratch for the product, reused as ∂ℓ/∂x below
        var sumDyXhat = dx.sum(dims);

        // ∂ℓ/∂x̂ = ∂ℓ/∂y · γ, so the per-channel factor a = γ·invstd multiplies ∂ℓ/∂y.
        var a = gamma is null ? invstd : gamma * invstd;
        if (batch)
        {
            // Paper:  ∂ℓ/∂σ² = Σ ∂ℓ/∂x̂ · (x − μ) · (−½)(σ² + ε)^(−3/2)      = −½ · a · invstd · Σ ∂ℓ/∂y·x̂
            //         ∂ℓ/∂μ  = Σ ∂ℓ/∂x̂ · (−invstd) + ∂ℓ/∂σ² · Σ −2(x − μ)/m  = −a · Σ ∂ℓ/∂y   (Σ(x − μ) = 0)
            //         ∂ℓ/∂x  = ∂ℓ/∂x̂ · invstd + ∂ℓ/∂σ² · 2(x − μ)/m + ∂ℓ/∂μ / m
            // With (x − μ) = x̂/invstd these three terms are a·∂ℓ/∂y, (2/m)·∂ℓ/∂σ²/invstd · x̂ and ∂ℓ/∂μ/m.
            var dVar = a * invstd * sumDyXhat * -0.5;
            var dMean = -a * sumDy;
            var coefXhat = dVar * (2.0 / m) / invstd;   // = −a·Σ∂ℓ/∂y·x̂/m
            var constant = dMean / m;
            dx.copy_(constant.view(shape).expand_as(dx)).addcmul_(xhat, coefXhat.view(shape), 1).addcmul_(dy, a.view(shape), 1);
        }
        else
        {
            // Fixed statistics: ∂ℓ/∂x = ∂ℓ/∂x̂ · invstd.
            dx.copy_(dy).mul_(a.view(shape));
        }

        return new List<Tensor> { dx, affine ? sumDyXhat : null!, affine ? sumDy : null!, null! };
    }

    private static long[] BroadcastShape(Tensor x)
    {
        var shape = new long[x.dim()];
        Array.Fill(shape, 1L);
        shape[1] = x.shape[1];
        return shape;
    }
}
