using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Custom autograd function for y = γ·(x − μ)/√(σ² + ε) + β with the paper's closed-form backward
/// (Ioffe &amp; Szegedy 2015, section 3, the chain rule below Algorithm 1). With batch statistics, μ and σ² are the
/// mini-batch mean and biased variance of x itself, so the gradient flows through them; with fixed (running)
/// statistics the transform is affine in x.
/// </summary>
internal sealed class BatchNormFunction : torch.autograd.SingleTensorFunction<BatchNormFunction>
{
    /// <summary>Non-tensor arguments (kept out of the autograd graph's inputs).</summary>
    private sealed record Settings(Tensor Mean, Tensor Variance, double Eps, long[] ReduceDims, bool BatchStatistics);

    public override string Name => nameof(BatchNormFunction);

    /// <summary>Runs the function, recording the node in the autograd graph when any input requires grad.</summary>
    public static Tensor Apply(Tensor x, Tensor? gamma, Tensor? beta, Tensor mean, Tensor variance, double eps, long[] reduceDims, bool batchStatistics)
        => apply(x, gamma!, beta!, new Settings(mean, variance, eps, reduceDims, batchStatistics));

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var gamma = vars[1] as Tensor;
        var beta = vars[2] as Tensor;
        var s = (Settings)vars[3];
        long[] shape = BroadcastShape(x);

        // invstd = 1/√(σ² + ε); x̂ = (x − μ)·invstd
        var invstd = (s.Variance + s.Eps).rsqrt_();
        var xhat = (x - s.Mean.view(shape)).mul_(invstd.view(shape));
        var y = gamma is null ? xhat.clone() : torch.addcmul(beta!.view(shape), xhat, gamma.view(shape), 1);

        ctx.save_for_backward(new List<Tensor> { xhat, invstd, gamma! });
        ctx.save_data("dims", s.ReduceDims);
        ctx.save_data("batch", s.BatchStatistics);
        ctx.save_data("m", x.numel() / x.shape[1]);
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

        // ∂ℓ/∂β = Σ ∂ℓ/∂y ;  ∂ℓ/∂γ = Σ ∂ℓ/∂y · x̂
        var sumDy = dy.sum(dims);
        var sumDyXhat = (dy * xhat).sum(dims);

        // ∂ℓ/∂x̂ = ∂ℓ/∂y · γ, so per channel the factor γ·invstd multiplies ∂ℓ/∂y.
        var gInvstd = gamma is null ? invstd : gamma * invstd;
        Tensor dx;
        if (batch)
        {
            // ∂ℓ/∂σ² = Σ ∂ℓ/∂x̂ · (x − μ) · (−½)(σ² + ε)^(−3/2) = −½ · γ · invstd² · Σ ∂ℓ/∂y · x̂
            var dVar = gInvstd * invstd * sumDyXhat * -0.5;
            // ∂ℓ/∂μ = Σ ∂ℓ/∂x̂ · (−invstd) + ∂ℓ/∂σ² · Σ −2(x − μ)/m ; the second sum is exactly 0 (Σ(x − μ) = 0).
            var dMean = -gInvstd * sumDy;
            // ∂ℓ/∂x = ∂ℓ/∂x̂ · invstd + ∂ℓ/∂σ² · 2(x − μ)/m + ∂ℓ/∂μ / m, with (x − μ) = x̂ / invstd
            var coefXhat = dVar * 2.0 / m / invstd;
            var constant = dMean / m;
            dx = torch.addcmul(constant.view(shape), xhat, coefXhat.view(shape), 1).addcmul_(dy, gInvstd.view(shape), 1);
        }
        else
        {
            dx = dy * gInvstd.view(shape);
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
