using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>
/// The training-mode bfloat16 path of one convolution (<see cref="NetworkArchitecture.BFloat16Convolutions"/>): input,
/// weight and bias are cast down, the output cast back to float32, and the float32 weights stay the ones kept and
/// updated. Guarded: libtorch's bfloat16 convolution computes some shapes wrongly on some CPUs (measured on AMD EPYC
/// with AVX512-BF16: a 1-channel 12×12 input to 8 channels came out with 60 % relative error, while the default
/// network's shapes are right), so the first batch of every new input shape is checked before training on it. The
/// check runs the convolution forward and backward in bfloat16 and in float32 (on the bfloat16-rounded input and
/// weight, with one fixed upstream gradient) and compares the output, the input gradient and the weight gradient; when
/// any relative error (max |difference| / max |float32 value|) exceeds <see cref="MaxRelativeError"/> (10× what
/// bfloat16's 8-bit mantissa gives), that shape of that layer runs in float32 from then on, with one log line.
/// </summary>
internal sealed class BFloat16Convolution
{
    /// <summary>Largest accepted relative error: 10× the ~4e-3 that bfloat16 rounding gives on these convolutions.</summary>
    public const double MaxRelativeError = 0.04;

    private const ulong GradientSeed = 20250601;
    private readonly Dictionary<ShapeKey, bool> _decisions = new();
    private readonly string _layer;
    private readonly Func<Conv2d, Tensor, (double Output, double GradInput, double GradWeight)> _check;

    /// <param name="layer">The convolution's state-dict path, for the log line.</param>
    /// <param name="check">Measures the relative errors on one batch; default <see cref="Check"/> (tests give another).</param>
    public BFloat16Convolution(string layer, Func<Conv2d, Tensor, (double, double, double)>? check = null)
    {
        _layer = layer;
        _check = check ?? Check;
    }

    /// <summary>The decisions taken so far: input shape → whether bfloat16 is used (true) or float32 (false).</summary>
    public IReadOnlyDictionary<ShapeKey, bool> Decisions => _decisions;

    /// <summary>
    /// The convolution of <paramref name="x"/> in bfloat16, or in float32 where the check found bfloat16 wrong for this
    /// input shape. <paramref name="onFallback"/> receives the one line that reports a fallback.
    /// </summary>
    public Tensor Forward(Conv2d conv, Tensor x, Action<BFloat16Fallback>? onFallback)
    {
        var key = ShapeKey.Of(x);
        if (!_decisions.TryGetValue(key, out bool useBFloat16))
        {
            (double output, double gradInput, double gradWeight) = _check(conv, x);
            double worst = Math.Max(output, Math.Max(gradInput, gradWeight));
            useBFloat16 = worst <= MaxRelativeError;
            _decisions[key] = useBFloat16;
            if (!useBFloat16)
                onFallback?.Invoke(new BFloat16Fallback(_layer, key.ToString(), output, gradInput, gradWeight));
        }

        return useBFloat16 ? InBFloat16(conv, x) : conv.call(x);
    }

    /// <summary>Restores decisions taken by an earlier run (a resumed checkpoint), so both runs compute the same.</summary>
    public void Restore(ShapeKey key, bool useBFloat16) => _decisions[key] = useBFloat16;

    private static Tensor InBFloat16(Conv2d conv, Tensor x)
    {
        using Tensor x16 = x.to_type(ScalarType.BFloat16);
        using Tensor w16 = conv.weight!.to_type(ScalarType.BFloat16);
        using Tensor? b16 = conv.bias?.to_type(ScalarType.BFloat16);
        using Tensor y16 = Convolve(x16, w16, b16);
        return y16.to_type(ScalarType.Float32);
    }

    private static Tensor Convolve(Tensor x, Tensor w, Tensor? b) =>
        nn.functional.conv2d(x, w, b, padding: new long[] { NetworkLayers.ConvPadding, NetworkLayers.ConvPadding });

    /// <summary>Relative errors of the bfloat16 output, input gradient and weight gradient against float32 on this batch.</summary>
    internal static (double Output, double GradInput, double GradWeight) Check(Conv2d conv, Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        using var enableGrad = torch.enable_grad();
        Tensor input = x.detach();
        Tensor weight = conv.weight!.detach();
        Tensor? bias = conv.bias?.detach();

        // Reference: float32 arithmetic on the values bfloat16 can hold, so rounding of the inputs is not counted.
        Tensor xRef = input.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32).requires_grad_();
        Tensor wRef = weight.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32).requires_grad_();
        Tensor? bRef = bias?.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32);
        Tensor yRef = Convolve(xRef, wRef, bRef);
        using var generator = new Generator(GradientSeed);
        Tensor upstream = torch.randn(yRef.shape, generator: generator).to_type(ScalarType.BFloat16).to_type(ScalarType.Float32).to(yRef.device);
        yRef.backward(new[] { upstream });

        Tensor x32 = input.clone().requires_grad_();
        Tensor w32 = weight.clone().requires_grad_();
        Tensor y16 = Convolve(x32.to_type(ScalarType.BFloat16), w32.to_type(ScalarType.BFloat16), bias?.to_type(ScalarType.BFloat16)).to_type(ScalarType.Float32);
        y16.backward(new[] { upstream });
        return (Relative(y16, yRef), Relative(x32.grad!, xRef.grad!), Relative(w32.grad!, wRef.grad!));
    }

    private static double Relative(Tensor actual, Tensor reference)
    {
        using var noGrad = torch.no_grad();
        double scale = reference.abs().max().item<float>();
        double difference = (actual.detach() - reference.detach()).abs().max().item<float>();
        if (!double.IsFinite(difference))
            return double.PositiveInfinity;
        return scale > 0 ? difference / scale : difference;
    }
}

/// <summary>The input shape a convolution saw (N, C, H, W) and its memory layout.</summary>
internal readonly record struct ShapeKey(long N, long C, long H, long W, bool ChannelsLast)
{
    public static ShapeKey Of(Tensor x) =>
        new(x.shape[0], x.shape[1], x.shape[2], x.shape[3], Bn.MLNet.Normalization.ChannelKernels.IsChannelsLast(x));

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{N}×{C}×{H}×{W}{(ChannelsLast ? " channels-last" : string.Empty)}");
}

/// <summary>A convolution that runs in float32 because its bfloat16 result was wrong for an input shape.</summary>
/// <param name="Layer">The convolution's state-dict path, e.g. <c>features.0</c>.</param>
/// <param name="Shape">The input shape (N×C×H×W and layout).</param>
/// <param name="OutputError">Relative error of the bfloat16 output.</param>
/// <param name="GradInputError">Relative error of the bfloat16 input gradient.</param>
/// <param name="GradWeightError">Relative error of the bfloat16 weight gradient.</param>
internal sealed record BFloat16Fallback(string Layer, string Shape, double OutputError, double GradInputError, double GradWeightError)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"bfloat16 convolution {Layer} on input {Shape} is wrong on this CPU (relative error: output {OutputError:G3}, input gradient " +
        $"{GradInputError:G3}, weight gradient {GradWeightError:G3}; bfloat16 rounding gives about 4e-3); this layer computes this shape in float32.");
}
