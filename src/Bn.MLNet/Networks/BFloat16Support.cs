using System.Diagnostics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Networks;

/// <summary>
/// Whether <see cref="NetworkArchitecture.BFloat16Convolutions"/> makes training faster here: the processor's bfloat16
/// instructions (<see cref="IsAccelerated"/>, without which libtorch emulates bfloat16), and a measurement, because
/// having them is not enough: on some processors with AVX512-BF16 and without AMX, libtorch's bfloat16 convolutions
/// run at half the speed of its float32 ones.
/// </summary>
/// <example>
/// <code>
/// var options = new BatchNormCnnOptions { BFloat16Convolutions = BFloat16Support.IsFasterThanFloat32 };
/// </code>
/// </example>
public static class BFloat16Support
{
    /// <summary>
    /// True when the processor reports AVX512-BF16 (CPUID leaf 7, sub-leaf 1, EAX bit 5) or AMX-BF16 (leaf 7,
    /// sub-leaf 0, EDX bit 22) and the operating system has AVX-512 enabled; false otherwise, including on every
    /// non-x86 processor. Read once per process.
    /// </summary>
    public static bool IsAccelerated { get; } = Detect();

    /// <summary>
    /// How many times faster a bfloat16 convolution trains than a float32 one on this machine: float32's time over
    /// bfloat16's for the forward and backward pass (input and weight gradients) of a 3×3 convolution of 32 to 32
    /// channels over 64 images of 28×28, channels-last (the default network's costliest layer), medians of five
    /// alternating runs after a warm-up, at libtorch's current thread count. Measured once per process, at the first
    /// read (about a third of a second), only where <see cref="IsAccelerated"/>; 0 elsewhere. Reads no global
    /// random state and changes no setting.
    /// </summary>
    public static double ConvolutionSpeedup => Speedup.Value;

    /// <summary>
    /// True when <see cref="ConvolutionSpeedup"/> is at least 1.1: bfloat16 convolutions make training faster here.
    /// The samples' <c>train</c> command turns <see cref="NetworkArchitecture.BFloat16Convolutions"/> on by this rule.
    /// </summary>
    public static bool IsFasterThanFloat32 => ConvolutionSpeedup >= 1.1;

    private static readonly Lazy<double> Speedup = new(() => IsAccelerated ? MeasureSpeedup() : 0);

    internal static double MeasureSpeedup()
    {
        using var scope = torch.NewDisposeScope();
        using var gradients = torch.enable_grad();
        using var generator = new Generator(1);
        Tensor x = ChannelsLast.From(torch.randn(new long[] { 64, 32, 28, 28 }, generator: generator));
        Tensor weight = torch.randn(new long[] { 32, 32, 3, 3 }, generator: generator).mul_(0.1);
        Tensor upstream = ChannelsLast.From(torch.randn(new long[] { 64, 32, 28, 28 }, generator: generator));
        var float32 = new List<double>();
        var bfloat16 = new List<double>();
        for (int run = 0; run < 6; run++)
        {
            double t32 = TimeStep(x, weight, upstream);
            double t16 = TimeStep(x.to_type(ScalarType.BFloat16), weight.to_type(ScalarType.BFloat16), upstream.to_type(ScalarType.BFloat16));
            if (run == 0)
                continue;   // warm-up: oneDNN builds its kernels at the first call of each type
            float32.Add(t32);
            bfloat16.Add(t16);
        }

        return Median(float32) / Median(bfloat16);
    }

    /// <summary>Seconds for one forward and backward pass of the convolution (input and weight gradients).</summary>
    private static double TimeStep(Tensor x, Tensor weight, Tensor upstream)
    {
        using var scope = torch.NewDisposeScope();
        Tensor input = x.detach().requires_grad_();
        Tensor w = weight.detach().requires_grad_();
        long start = Stopwatch.GetTimestamp();
        Tensor y = torch.nn.functional.conv2d(input, w, padding: new long[] { 1, 1 });
        y.backward(new[] { upstream });
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        int n = values.Count;
        return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    }

    private static bool Detect()
    {
        if (!X86Base.IsSupported || !Avx512F.IsSupported)
            return false;
        var (maxLeaf, _, _, _) = X86Base.CpuId(0, 0);
        if (maxLeaf < 7)
            return false;
        var (_, _, _, leaf7Edx) = X86Base.CpuId(7, 0);
        var (leaf7Sub1Eax, _, _, _) = X86Base.CpuId(7, 1);
        const int Avx512Bf16Bit = 1 << 5;
        const int AmxBf16Bit = 1 << 22;
        return (leaf7Sub1Eax & Avx512Bf16Bit) != 0 || (leaf7Edx & AmxBf16Bit) != 0;
    }
}
