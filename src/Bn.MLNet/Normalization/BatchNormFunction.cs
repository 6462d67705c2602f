using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Custom autograd function for y = γ·(x − μ)/√(σ² + ε) + β with the paper's closed-form backward
/// (Ioffe &amp; Szegedy 2015, the chain rule given below Algorithm 1), and Batch Renormalization's
/// y = γ·(x̂·r + d) + β (Ioffe 2017) when <see cref="Settings.Renorm"/> is set. With batch statistics (training, or no
/// running statistics), μ = μ_B and σ² = σ²_B are the per-channel mean and biased variance of x itself, computed here,
/// so the gradient flows through them; with fixed running statistics the transform is affine in x and runs as ordinary
/// differentiable operations (no custom node).
/// </summary>
/// <remarks>
/// One body, two paths: CPU float tensors run <see cref="KernelPath"/> (our one-read kernels, no full-size temporary);
/// every other tensor (another device) runs <see cref="TensorPath"/> (libtorch operations). Batch Normalization is
/// Batch Renormalization with r = 1 and d = 0.
/// </remarks>
internal sealed class BatchNormFunction : torch.autograd.SingleTensorFunction<BatchNormFunction>
{
    // Forces TensorPath on CPU tensors within a scope (tests of the device-independent path); per async flow.
    private static readonly AsyncLocal<bool> s_forceTensorPath = new();

    // Gradients handed to libtorch by the previous backward call on this thread. libtorch copies its references as
    // soon as backward returns, so these managed handles only keep the gradients alive until the step's dispose scope
    // ends; releasing them at the next backward call lets libtorch free each gradient as soon as it is consumed.
    [ThreadStatic]
    private static List<Tensor>? t_returned;

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

        /// <summary>Batch Renormalization's correction for this step; null for Batch Normalization.</summary>
        public RenormCorrection? Renorm;

        /// <summary>Whether a backward pass can follow (grad mode on and an input requires grad); set by <see cref="Apply"/>.</summary>
        public bool NeedsBackward;
    }

    public override string Name => nameof(BatchNormFunction);

    /// <summary>Runs <see cref="TensorPath"/> for CPU tensors too until the returned scope is disposed (same async flow only).</summary>
    internal static IDisposable ForceTensorPath()
    {
        bool previous = s_forceTensorPath.Value;
        s_forceTensorPath.Value = true;
        return new Restore(() => s_forceTensorPath.Value = previous);
    }

    private static bool UsesKernels(Tensor x) => !s_forceTensorPath.Value && KernelPath.Applies(x);

    /// <summary>
    /// Applies the transform. With <see cref="Settings.BatchStatistics"/> it goes through this autograd function; with
    /// fixed statistics (<see cref="Settings.Mean"/> and <see cref="Settings.Variance"/> given) it is the affine map
    /// y = x·scale + shift, whose autograd gradient is the closed form ∂ℓ/∂x = ∂ℓ/∂y·γ·invstd.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor? gamma, Tensor? beta, Settings settings)
    {
        bool needsGrad = torch.is_grad_enabled() && (x.requires_grad || (gamma?.requires_grad ?? false) || (beta?.requires_grad ?? false));
        if (settings.BatchStatistics)
        {
            settings.NeedsBackward = needsGrad;
            return apply(x, gamma!, beta!, settings);
        }

        using var scope = torch.NewDisposeScope();
        bool managed = !needsGrad && UsesKernels(x) && ChannelMath.Supports(settings.Mean!) && ChannelMath.Supports(settings.Variance!);
        Tensor y = managed
            ? KernelPath.Affine(x, settings.Mean!, settings.Variance!, gamma, beta, settings.Eps)
            : TensorPath.Affine(x, settings.Mean!, settings.Variance!, gamma, beta, settings.Eps);
        return y.MoveToOuterDisposeScope();
    }

    public override Tensor forward(torch.autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var gamma = vars[1] as Tensor;
        var beta = vars[2] as Tensor;
        var s = (Settings)vars[3];
        if (UsesKernels(x))
        {
            var (y, state) = KernelPath.Forward(x, gamma, beta, s.Eps, s.Renorm, out s.Mean, out s.Variance);
            if (s.NeedsBackward)
            {
                // x (alive anyway as the previous layer's output) as a saved variable, released with the graph.
                ctx.save_for_backward(new List<Tensor> { x });
                ctx.save_data("state", state);
            }

            return y;
        }

        var (output, tensors) = TensorPath.Forward(x, gamma, beta, s.Eps, s.Renorm, out s.Mean, out s.Variance);
        if (s.NeedsBackward)
        {
            // Tensors as saved variables (libtorch keeps them with the graph); the shape bookkeeping as data.
            ctx.save_for_backward(new List<Tensor> { tensors.XHat, tensors.InvStd, tensors.R, tensors.D, tensors.Gamma! });
            ctx.save_data("state", new TensorPath.Shape(tensors.Dims, tensors.Count, tensors.Gamma is not null));
        }

        return output;
    }

    public override List<Tensor> backward(torch.autograd.AutogradContext ctx, Tensor gradOutput)
    {
        ReleaseReturnedGradients();
        Tensor dx;
        Tensor? dGamma, dBeta;
        if (ctx.get_data("state") is KernelPath.State state)
        {
            Tensor x = ctx.get_saved_variables()[0];
            (dx, dGamma, dBeta) = KernelPath.Backward(state, x, gradOutput);
            // Release our handles to x and ∂ℓ/∂y now (libtorch holds its own references while it needs them).
            x.Dispose();
            gradOutput.Dispose();
        }
        else
        {
            var saved = ctx.get_saved_variables();
            var shape = (TensorPath.Shape)ctx.get_data("state");
            var tensors = new TensorPath.State(saved[0], saved[1], saved[2], saved[3], shape.Affine ? saved[4] : null, shape.Dims, shape.Count);
            (dx, dGamma, dBeta) = TensorPath.Backward(tensors, gradOutput);
        }

        var grads = new List<Tensor> { dx, dGamma!, dBeta!, null! };
        (t_returned ??= new List<Tensor>()).AddRange(grads.Where(t => t is not null));
        return grads;
    }

    private static void ReleaseReturnedGradients()
    {
        if (t_returned is null)
            return;
        foreach (var t in t_returned)
            t.Dispose();
        t_returned.Clear();
    }

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }
}
