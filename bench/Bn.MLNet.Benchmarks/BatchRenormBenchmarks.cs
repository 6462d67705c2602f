using BenchmarkDotNet.Attributes;
using Bn.MLNet.Normalization;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Benchmarks;

/// <summary>
/// Forward + backward time of our Batch Renormalization (training mode, final limits r_max 3 and d_max 5 from the first
/// step, after a few steps so the running statistics differ from the batch's and r and d are not trivial) against our
/// Batch Normalization (the baseline) on the same input: what the renormalization costs on top of BN. Float32 on CPU,
/// one libtorch thread and the default count. Shapes: the default network's two convolution stages stored
/// channels-last (the layout the network trains in) and N×C×H×W, and the default hidden layer (512×128).
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 6)]
[MemoryDiagnoser(false)]
public class BatchRenormBenchmarks
{
    private Tensor _x = null!;
    private Tensor _upstream = null!;
    private nn.Module<Tensor, Tensor> _renorm = null!;
    private nn.Module<Tensor, Tensor> _batchNorm = null!;

    /// <summary>Input shape N×C×H×W (2d) or N×C (1d); "/cl": stored channels-last.</summary>
    [Params("128x32x28x28/cl", "128x64x14x14/cl", "128x32x28x28", "512x128")]
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
        var schedule = new BatchRenormSchedule(warmupSteps: 0);
        _renorm = shape.Length == 4 ? new BatchRenorm2d(c, schedule: schedule) : new BatchRenorm1d(c, schedule: schedule);
        _batchNorm = shape.Length == 4 ? new BatchNorm2d(c) : new BatchNorm1d(c);
        for (int i = 0; i < 3; i++)
        {
            Step(_renorm);
            Step(_batchNorm);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _renorm.Dispose();
        _batchNorm.Dispose();
        _x.Dispose();
        _upstream.Dispose();
        torch.set_num_threads(_previousThreads);
    }

    [Benchmark(Baseline = true)]
    public void BatchNorm() => Step(_batchNorm);

    [Benchmark]
    public void BatchRenorm() => Step(_renorm);

    private void Step(nn.Module<Tensor, Tensor> module)
    {
        using var scope = torch.NewDisposeScope();
        var y = module.forward(_x);
        y.backward(new[] { _upstream });
        module.zero_grad();
        _x.grad = null;
    }
}
