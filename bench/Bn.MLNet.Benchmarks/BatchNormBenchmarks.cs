using BenchmarkDotNet.Attributes;
using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Benchmarks;

/// <summary>
/// Forward + backward time of our Batch Normalization (Algorithm 1 with the closed-form backward as a custom
/// autograd function) against TorchSharp's native batch norm (libtorch kernel, the baseline), training mode,
/// float32 on CPU, with one libtorch thread and with the default thread count (the machine may be shared, and
/// contention hurts the implementation with more kernel launches more). Each invocation: forward, backward with a fixed upstream gradient, gradients reset to none.
/// Shapes: the default network's two convolution stages (128×32×28×28, 128×64×14×14), few channels with a large
/// spatial size (128×4×56×56), many channels with a small spatial size (128×256×7×7), the default hidden layer as 1d
/// (512×128) and a wide 1d layer (128×2048); and the two convolution-stage shapes again stored channels-last (suffix
/// "/cl", N×H×W×C memory with gradient to match), the layout <c>BatchNormCnnNetwork</c> trains in. A short job
/// (2 warm-ups, 6 iterations) keeps a full run to minutes.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 6)]
[MemoryDiagnoser(false)]
public class BatchNormBenchmarks
{
    private Tensor _x = null!;
    private Tensor _upstream = null!;
    private nn.Module<Tensor, Tensor> _ours = null!;
    private nn.Module<Tensor, Tensor> _native = null!;

    /// <summary>Input shape N×C×H×W (2d) or N×C (1d); "/cl": stored channels-last.</summary>
    [Params("128x32x28x28", "128x64x14x14", "128x4x56x56", "128x256x7x7", "512x128", "128x2048", "128x32x28x28/cl", "128x64x14x14/cl")]
    public string Shape { get; set; } = "";

    /// <summary>libtorch intra-op threads (0 = libtorch's default, one per core).</summary>
    [Params(1, 0)]
    public int Threads { get; set; }

    private int _previousThreads;

    [GlobalSetup]
    public void Setup()
    {
        _previousThreads = torch.get_num_threads();
        if (Threads > 0) torch.set_num_threads(Threads);
        string[] parts = Shape.Split('/');
        long[] shape = parts[0].Split('x').Select(long.Parse).ToArray();
        bool channelsLast = parts.Length > 1 && parts[1] == "cl";
        Tensor Layout(Tensor t) => channelsLast ? t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) : t;
        long c = shape[1];
        var gen = new torch.Generator(1);
        _x = Layout(torch.randn(shape, generator: gen) * 100 + 50).requires_grad_(true);
        _upstream = Layout(torch.randn(shape, generator: gen));
        if (shape.Length == 4)
        {
            _ours = new Bn.MLNet.Normalization.BatchNorm2d(c);
            _native = nn.BatchNorm2d(c);
        }
        else
        {
            _ours = new Bn.MLNet.Normalization.BatchNorm1d(c);
            _native = nn.BatchNorm1d(c);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ours.Dispose();
        _native.Dispose();
        _x.Dispose();
        _upstream.Dispose();
        torch.set_num_threads(_previousThreads);
    }

    [Benchmark(Baseline = true)]
    public void Native() => Step(_native);

    [Benchmark]
    public void Ours() => Step(_ours);

    private void Step(nn.Module<Tensor, Tensor> module)
    {
        using var scope = torch.NewDisposeScope();
        var y = module.forward(_x);
        y.backward(new[] { _upstream });
        module.zero_grad();
        _x.grad = null;
    }
}
