using BenchmarkDotNet.Attributes;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Benchmarks;

/// <summary>
/// Cost of the exponential moving average of the weights (<see cref="TrainerOptions.WeightAveragingDecay"/>): one SGD step
/// (forward, backward, update) of the default network on a batch of 128 random 28×28 images is the baseline; the same
/// step followed by the average's update, and the update alone, are compared with it. One libtorch thread, in process.
/// </summary>
[Config(typeof(MLNetBenchmarkConfig))]
public class WeightAverageBenchmarks
{
    private BatchNormCnnNetwork _network = null!;
    private torch.optim.Optimizer _optimizer = null!;
    private WeightAverage _average = null!;
    private Tensor _x = null!, _y = null!;
    private int _previousThreads;

    /// <summary>Builds the network, its optimizer and average, and one batch.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _previousThreads = torch.get_num_threads();
        torch.set_num_threads(1);
        torch.manual_seed(1);
        _network = new BatchNormCnnNetwork(NetworkArchitecture.Default());
        _network.train();
        _optimizer = torch.optim.SGD(_network.parameters(), 0.01, momentum: 0.9, nesterov: true, weight_decay: 5e-4);
        _average = new WeightAverage(_network, 0.999);
        var gen = new torch.Generator(1);
        _x = torch.randn(new long[] { 128, 1, 28, 28 }, generator: gen);
        _y = torch.randint(0, 10, new long[] { 128 }, generator: gen);
    }

    /// <summary>Disposes everything Setup made and puts the thread count back.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _average.Dispose();
        _optimizer.Dispose();
        _network.Dispose();
        _x.Dispose();
        _y.Dispose();
        torch.set_num_threads(_previousThreads);
    }

    /// <summary>Baseline: one training step without averaging.</summary>
    [Benchmark(Baseline = true)]
    public void Step() => TrainStep();

    /// <summary>One training step, then the average's update.</summary>
    [Benchmark]
    public void StepWithAverage()
    {
        TrainStep();
        _average.Update();
    }

    /// <summary>The average's update alone.</summary>
    [Benchmark]
    public void AverageUpdate() => _average.Update();

    private void TrainStep()
    {
        using DisposeScope scope = torch.NewDisposeScope();
        _optimizer.zero_grad();
        Tensor loss = nn.functional.cross_entropy(_network.call(_x), _y);
        loss.backward();
        _optimizer.step();
    }
}
