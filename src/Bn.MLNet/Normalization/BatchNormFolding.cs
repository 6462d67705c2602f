using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bn.MLNet.Normalization;

/// <summary>
/// Folds an evaluation-mode Batch Normalization layer into the preceding <see cref="Conv2d"/> or
/// <see cref="Linear"/> layer (Ioffe &amp; Szegedy 2015, Algorithm 2 step 11: in inference BN is a fixed affine
/// transform): W' = W·γ/√(Var[x] + ε) per output channel and b' = (b − E[x])·γ/√(Var[x] + ε) + β, with b = 0
/// when the layer has no bias. The returned layer (always with bias) alone computes what the pair computed in
/// evaluation mode. The input layers are not modified.
/// </summary>
public static class BatchNormFolding
{
    /// <summary>Folds <paramref name="bn"/> (running statistics, γ, β, ε) into <paramref name="conv"/>.</summary>
    /// <param name="conv">The convolution feeding the BN layer.</param>
    /// <param name="bn">The BN layer; it must track running statistics.</param>
    /// <returns>A new convolution with bias equal to BN(conv(x)) in evaluation mode.</returns>
    /// <exception cref="ArgumentException">Channel counts differ, or the BN layer has no running statistics.</exception>
    public static Conv2d Fold(Conv2d conv, BatchNorm2d bn)
    {
        ArgumentNullException.ThrowIfNull(bn);
        return Fold(conv, RequireStats(bn.RunningMean, bn), bn.RunningVar!, bn.Gamma, bn.Beta, bn.Eps);
    }

    /// <summary>Folds <paramref name="bn"/> (running statistics, γ, β, ε) into <paramref name="linear"/>.</summary>
    /// <param name="linear">The fully connected layer feeding the BN layer.</param>
    /// <param name="bn">The BN layer; it must track running statistics.</param>
    /// <returns>A new linear layer with bias equal to BN(linear(x)) in evaluation mode.</returns>
    /// <exception cref="ArgumentException">Feature counts differ, or the BN layer has no running statistics.</exception>
    public static Linear Fold(Linear linear, BatchNorm1d bn)
    {
        ArgumentNullException.ThrowIfNull(bn);
        return Fold(linear, RequireStats(bn.RunningMean, bn), bn.RunningVar!, bn.Gamma, bn.Beta, bn.Eps);
    }

    /// <summary>Folds TorchSharp's native <c>torch.nn.BatchNorm2d</c> into <paramref name="conv"/>.</summary>
    /// <param name="conv">The convolution feeding the BN layer.</param>
    /// <param name="bn">The native BN layer; it must track running statistics.</param>
    /// <returns>A new convolution with bias equal to BN(conv(x)) in evaluation mode.</returns>
    /// <exception cref="ArgumentException">Channel counts differ, or the BN layer has no running statistics.</exception>
    public static Conv2d Fold(Conv2d conv, TorchSharp.Modules.BatchNorm2d bn)
    {
        ArgumentNullException.ThrowIfNull(bn);
        return Fold(conv, RequireStats(bn.running_mean, bn), bn.running_var!, bn.affine ? bn.weight : null, bn.bias, bn.eps);
    }

    /// <summary>Folds TorchSharp's native <c>torch.nn.BatchNorm1d</c> into <paramref name="linear"/>.</summary>
    /// <param name="linear">The fully connected layer feeding the BN layer.</param>
    /// <param name="bn">The native BN layer; it must track running statistics.</param>
    /// <returns>A new linear layer with bias equal to BN(linear(x)) in evaluation mode.</returns>
    /// <exception cref="ArgumentException">Feature counts differ, or the BN layer has no running statistics.</exception>
    public static Linear Fold(Linear linear, TorchSharp.Modules.BatchNorm1d bn)
    {
        ArgumentNullException.ThrowIfNull(bn);
        return Fold(linear, RequireStats(bn.running_mean, bn), bn.running_var!, bn.affine ? bn.weight : null, bn.bias, bn.eps);
    }

    /// <summary>Folds explicit BN statistics and parameters into <paramref name="conv"/>.</summary>
    /// <param name="conv">The convolution feeding the BN layer.</param>
    /// <param name="runningMean">E[x] per output channel.</param>
    /// <param name="runningVar">Var[x] per output channel.</param>
    /// <param name="gamma">γ per channel, or null for 1.</param>
    /// <param name="beta">β per channel, or null for 0.</param>
    /// <param name="eps">ε of the BN layer.</param>
    /// <returns>A new convolution with bias (same geometry, dtype and device as <paramref name="conv"/>).</returns>
    /// <exception cref="ArgumentException">A statistics tensor does not have one entry per output channel.</exception>
    public static Conv2d Fold(Conv2d conv, Tensor runningMean, Tensor runningVar, Tensor? gamma, Tensor? beta, double eps)
    {
        ArgumentNullException.ThrowIfNull(conv);
        var w = conv.weight!;
        CheckShapes(w.shape[0], conv.bias, runningMean, runningVar, gamma, beta, eps);
        var k = conv.kernel_size;
        var st = conv.stride;
        var d = conv.dilation;
        Conv2d folded = conv.padding_type is { } paddingType
            ? nn.Conv2d(conv.in_channels, conv.out_channels, (k[0], k[1]), paddingType, stride: (st[0], st[1]), dilation: (d[0], d[1]),
                padding_mode: conv.padding_mode, groups: conv.groups, bias: true, device: w.device, dtype: w.dtype)
            : nn.Conv2d(conv.in_channels, conv.out_channels, (k[0], k[1]), stride: (st[0], st[1]), padding: (conv.padding![0], conv.padding[1]),
                dilation: (d[0], d[1]), padding_mode: conv.padding_mode, groups: conv.groups, bias: true, device: w.device, dtype: w.dtype);

        FoldInto(w, conv.bias, runningMean, runningVar, gamma, beta, eps, folded.weight!, folded.bias!);
        return folded;
    }

    /// <summary>Folds explicit BN statistics and parameters into <paramref name="linear"/>.</summary>
    /// <param name="linear">The fully connected layer feeding the BN layer.</param>
    /// <param name="runningMean">E[x] per output feature.</param>
    /// <param name="runningVar">Var[x] per output feature.</param>
    /// <param name="gamma">γ per feature, or null for 1.</param>
    /// <param name="beta">β per feature, or null for 0.</param>
    /// <param name="eps">ε of the BN layer.</param>
    /// <returns>A new linear layer with bias (same dtype and device as <paramref name="linear"/>).</returns>
    /// <exception cref="ArgumentException">A statistics tensor does not have one entry per output feature.</exception>
    public static Linear Fold(Linear linear, Tensor runningMean, Tensor runningVar, Tensor? gamma, Tensor? beta, double eps)
    {
        ArgumentNullException.ThrowIfNull(linear);
        var w = linear.weight!;
        CheckShapes(w.shape[0], linear.bias, runningMean, runningVar, gamma, beta, eps);
        var folded = nn.Linear(linear.in_features, linear.out_features, hasBias: true, device: w.device, dtype: w.dtype);
        FoldInto(w, linear.bias, runningMean, runningVar, gamma, beta, eps, folded.weight!, folded.bias!);
        return folded;
    }

    /// <summary>
    /// Folds the evaluation-mode BN layer <paramref name="bn"/> (this library's <see cref="BatchNormBase"/> layers, batch
    /// renormalization included, or TorchSharp's native <c>BatchNorm1d</c>/<c>BatchNorm2d</c>), with its own running
    /// statistics, γ, β and ε, into the weight and bias of the layer before it, writing the result into
    /// <paramref name="targetWeight"/> and <paramref name="targetBias"/> (same shapes as the layer's weight and bias).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="bn"/> is not a batch normalization layer, has no running statistics, or its size differs.</exception>
    internal static void FoldInto(Tensor weight, Tensor? bias, nn.Module bn, Tensor targetWeight, Tensor targetBias)
    {
        ArgumentNullException.ThrowIfNull(bn);
        var (mean, variance, gamma, beta, eps) = bn switch
        {
            BatchNormBase b => (RequireStats(b.RunningMean, b), b.RunningVar!, b.Gamma, b.Beta, b.Eps),
            TorchSharp.Modules.BatchNorm2d n => (RequireStats(n.running_mean, n), n.running_var!, n.affine ? n.weight : null, n.bias, n.eps),
            TorchSharp.Modules.BatchNorm1d n => (RequireStats(n.running_mean, n), n.running_var!, n.affine ? n.weight : null, n.bias, n.eps),
            _ => throw new ArgumentException($"{bn.GetType().Name} is not a batch normalization layer, so it cannot be folded.", nameof(bn)),
        };
        CheckShapes(weight.shape[0], bias, mean, variance, gamma, beta, eps);
        FoldInto(weight, bias, mean, variance, gamma, beta, eps, targetWeight, targetBias);
    }

    /// <summary>The one folding routine: writes W·scale into <paramref name="targetWeight"/> and the shift into <paramref name="targetBias"/>.</summary>
    private static void FoldInto(Tensor weight, Tensor? bias, Tensor mean, Tensor variance, Tensor? gamma, Tensor? beta, double eps, Tensor targetWeight, Tensor targetBias)
    {
        var (scale, shift) = ScaleAndShift(weight.shape[0], weight, bias, mean, variance, gamma, beta, eps);
        using var s = scale;
        using var b = shift;
        var shape = new long[weight.dim()];
        Array.Fill(shape, 1L);
        shape[0] = -1;
        using var noGrad = torch.no_grad();
        using var view = s.view(shape);
        using var newWeight = weight * view;
        targetWeight.copy_(newWeight);
        targetBias.copy_(b);
    }

    private static void CheckShapes(long channels, Tensor? bias, Tensor mean, Tensor variance, Tensor? gamma, Tensor? beta, double eps)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(variance);
        if (!(eps > 0))
            throw new ArgumentException($"eps must be > 0, got {eps}.", nameof(eps));
        foreach (var (t, name) in new[] { (mean, "runningMean"), (variance, "runningVar"), (gamma, "gamma"), (beta, "beta"), (bias, "layer bias") })
        {
            if (t is not null && (t.dim() != 1 || t.shape[0] != channels))
                throw new ArgumentException($"{name} must have shape [{channels}] (one entry per output channel of the layer), got [{string.Join(", ", t.shape)}].", name);
        }
    }

    private static Tensor RequireStats(Tensor? runningMean, nn.Module bn)
        => runningMean ?? throw new ArgumentException($"{bn.GetType().Name} does not track running statistics, so it has no fixed inference transform to fold.", nameof(bn));

    /// <summary>scale = γ/√(Var + ε); shift = (b − E[x])·scale + β, both computed in float64 then cast back.</summary>
    private static (Tensor scale, Tensor shift) ScaleAndShift(long channels, Tensor weight, Tensor? bias, Tensor mean, Tensor variance, Tensor? gamma, Tensor? beta, double eps)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var f64 = ScalarType.Float64;
        var scale = (variance.to(f64) + eps).rsqrt();
        if (gamma is not null) scale = scale * gamma.to(f64);
        var b = bias is null ? torch.zeros(channels, f64, weight.device) : bias.to(f64);
        var shift = (b - mean.to(f64)) * scale;
        if (beta is not null) shift = shift + beta.to(f64);
        return (scale.to(weight.dtype).MoveToOuterDisposeScope(), shift.to(weight.dtype).MoveToOuterDisposeScope());
    }
}
