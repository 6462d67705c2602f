using BenchmarkDotNet.Attributes;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Benchmarks;

/// <summary>
/// Forward + backward time of the default network's two costliest convolutions (3×3, padding 1: 32→32 channels on
/// 128×32×28×28 and 64→64 on 128×64×14×14) with libtorch's default thread count, in float32 and bfloat16 (what
/// <c>NetworkArchitecture.BFloat16Convolutions</c> trains with), and with input, weights and gradient stored N×C×H×W
/// ("nchw") or channels-last ("nhwc", the layout <c>BatchNormCnnNetwork</c> runs its convolutions in). The setup prints
/// the strides of input and output, so the run shows that libtorch keeps the layout.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 6)]
public class ConvPrecisionBenchmarks
{
    private Tensor _x = null!;
    private Tensor _weight = null!;
    private Tensor _upstream = null!;

    /// <summary>Input shape N×C×H×W; the convolution keeps C channels.</summary>
    [Params("128x32x28x28", "128x64x14x14")]
    public string Shape { get; set; } = "";

    /// <summary>Element type of input and weights: "float32" or "bfloat16".</summary>
    [Params("float32", "bfloat16")]
    public string Precision { get; set; } = "";

    /// <summary>Memory layout of input, weights and upstream gradient: "nchw" (contiguous) or "nhwc" (channels-last).</summary>
    [Params("nchw", "nhwc")]
    public string Layout { get; set; } = "";

    private Tensor L(Tensor t) => Layout == "nhwc" ? t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) : t;

    [GlobalSetup]
    public void Setup()
    {
        long[] shape = Shape.Split('x').Select(long.Parse).ToArray();
        ScalarType type = Precision == "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32;
        var gen = new torch.Generator(1);
        _x = L(torch.randn(shape, generator: gen).to_type(type)).requires_grad_(true);
        _weight = L((torch.randn(new long[] { shape[1], shape[1], 3, 3 }, generator: gen) * 0.1).to_type(type)).requires_grad_(true);
        _upstream = L(torch.randn(shape, generator: gen).to_type(type));
        using Tensor probe = nn.functional.conv2d(_x, _weight, padding: new long[] { 1, 1 });
        Console.WriteLine($"// layout {Layout}: x strides {string.Join(",", _x.stride())} y strides {string.Join(",", probe.stride())}");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _x.Dispose();
        _weight.Dispose();
        _upstream.Dispose();
    }

    [Benchmark]
    public void ForwardBackward()
    {
        using DisposeScope scope = torch.NewDisposeScope();
        Tensor y = nn.functional.conv2d(_x, _weight, padding: new long[] { 1, 1 });
        y.backward(new[] { _upstream });
        _x.grad = null;
        _weight.grad = null;
    }
}
