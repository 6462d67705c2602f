using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Custom autograd function for Batch Renormalization in training (Ioffe, NeurIPS 2017, Algorithm 1):
/// x̂ = (x − μ_B)/σ_B with σ_B = √(σ²_B + ε), then y = γ·(x̂·r + d) + β with the per-channel corrections
/// r = clip(σ_B/σ, 1/r_max, r_max) and d = clip((μ_B − μ)/σ, −d_max, d_max), where μ is the running mean and
/// σ = √(running variance + ε). r and d are constants for backprop (the paper's stop_gradient), so the backward pass is
/// Batch Normalization's closed-form backward with ∂ℓ/∂x̂ = ∂ℓ/∂y·γ·r.
/// </summary>
internal sealed class BatchRenormFunction : torch.autograd.SingleTensorFunction<BatchRenormFunction>
{
    /// <summary>
    /// Non-tensor argument. The caller sets the running statistics, ε, the reduction axes and the current limits; the
    /// forward pass writes μ_B and the biased σ²_B (per channel, detached) into <see cref="Mean"/> and
    /// <see cref="Variance"/>, and the corrections into <see cref="R"/> and <see cref="D"/>.
    /// </summary>
    internal sealed class Settings
    {
        public Tensor RunningMean = null!;
        public Tensor RunningVar = null!;
        public double Eps;
        public long[] ReduceDims = Array.Empty<long>();
        public double RMax = 1;
        public double DMax;
        public Tensor? Mean;
        public Tensor? Variance;
        public Tensor? R;
        public Tensor? D;
    }

    public override string Name => nameof(BatchRenormFunction);

    public static Tensor Apply(Tensor x, Tensor? gamma, Tensor? beta, Settings settings)
        => apply(x, gamma!, beta!, settings);

    /// <summary>
    /// The training-mode forward pass of a Batch Renormalization layer: validates the input, applies the function with
    /// the limits of the layer's current step (its <c>num_batches_tracked</c>), then updates the running statistics from
    /// μ_B and σ²_B exactly as Batch Normalization does (or hands them to the population-statistics collector).
    /// </summary>
    internal static Tensor TrainingForward(BatchNormBase layer, BatchRenormSchedule schedule, Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        layer.Validate(input);
        using var scope = torch.NewDisposeScope();
        long step = layer.NumBatchesTracked!.item<long>();
        var settings = new Settings
        {
            RunningMean = layer.RunningMean!,
            RunningVar = layer.RunningVar!,
            Eps = layer.Eps,
            ReduceDims = BatchNormBase.ReduceDims(input.dim()),
            RMax = schedule.RMaxAt(step),
            DMax = schedule.DMaxAt(step),
        };
        var output = Apply(input, layer.Gamma, layer.Beta, settings);

        layer.RecordBatchStatistics(settings.Mean!, settings.Variance!, input.numel() / layer.NumFeatures);
        return output.MoveToOuterDisposeScope();
    }

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var gamma = vars[1] as Tensor;
        var beta = vars[2] as Tensor;
        var s = (Settings)vars[3];
        long[] shape = ChannelMath.BroadcastShape(x);
        long m = x.numel() / x.shape[1];

        // Two-pass batch statistics: μ_B = Σx/m, σ²_B = Σ(x − μ_B)²/m on the centred values.
        var mean = x.mean(s.ReduceDims, keepdim: true);
        var xhat = x - mean;                       // becomes x̂ in place
        var y = xhat * xhat;                       // scratch for the squared deviations, then the output
        var variance = y.sum(s.ReduceDims).div_(m);
        var invstd = (variance + s.Eps).rsqrt_();
        xhat.mul_(invstd.view(shape));

        // r = clip(σ_B/σ, 1/r_max, r_max) and d = clip((μ_B − μ)/σ, −d_max, d_max), per channel.
        var runningMean = s.RunningMean.to(x.dtype);
        var invSigma = (s.RunningVar.to(x.dtype) + s.Eps).rsqrt_();
        var r = (invSigma / invstd).clamp_(1.0 / s.RMax, s.RMax);
        var d = ((mean.view(-1) - runningMean) * invSigma).clamp_(-s.DMax, s.DMax);

        // y = γ·(x̂·r + d) + β = (γ·r)·x̂ + (γ·d + β): one fused pass over the full-size tensor.
        var scale = gamma is null ? r : gamma * r;
        var shift = gamma is null ? d : gamma * d;
        if (beta is not null) shift = shift + beta;
        y.copy_(shift.view(shape).expand_as(y)).addcmul_(xhat, scale.view(shape), 1);

        s.Mean = mean.view(-1);
        s.Variance = variance;
        s.R = r;
        s.D = d;
        ctx.save_for_backward(new List<Tensor> { xhat, invstd, r, d, gamma! });
        ctx.save_data("dims", s.ReduceDims);
        ctx.save_data("m", m);
        ctx.save_data("affine", gamma is not null);
        return y;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var saved = ctx.get_saved_variables();
        var xhat = saved[0];
        var invstd = saved[1];
        var r = saved[2];
        var d = saved[3];
        bool affine = (bool)ctx.get_data("affine");
        var gamma = affine ? saved[4] : null;
        var dims = (long[])ctx.get_data("dims");
        double m = (long)ctx.get_data("m");
        long[] shape = ChannelMath.BroadcastShape(xhat);
        var dy = gradOutput;

        // ∂ℓ/∂β = Σ ∂ℓ/∂y ;  ∂ℓ/∂γ = Σ ∂ℓ/∂y·(x̂·r + d) = r·Σ ∂ℓ/∂y·x̂ + d·Σ ∂ℓ/∂y   (sums over every axis but C)
        var sumDy = dy.sum(dims);
        var dx = dy * xhat;                        // scratch for the product, reused as ∂ℓ/∂x below
        var sumDyXhat = dx.sum(dims);

        // With r, d constant, ∂ℓ/∂x̂ = ∂ℓ/∂y·γ·r, and Batch Normalization's backward through x̂ = (x − μ_B)·invstd gives
        //   ∂ℓ/∂x = invstd·(∂ℓ/∂x̂ − mean(∂ℓ/∂x̂) − x̂·mean(∂ℓ/∂x̂·x̂))
        //         = a·(∂ℓ/∂y − Σ∂ℓ/∂y/m − x̂·Σ(∂ℓ/∂y·x̂)/m),   a = γ·r·invstd per channel.
        var a = (gamma is null ? r : gamma * r) * invstd;
        var constant = -a * sumDy / m;
        var coefXhat = -a * sumDyXhat / m;
        dx.copy_(constant.view(shape).expand_as(dx)).addcmul_(xhat, coefXhat.view(shape), 1).addcmul_(dy, a.view(shape), 1);

        Tensor? dGamma = affine ? r * sumDyXhat + d * sumDy : null;
        return new List<Tensor> { dx, dGamma!, affine ? sumDy : null!, null! };
    }
}
