using BenchmarkDotNet.Attributes;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet.Benchmarks;

/// <summary>
/// What a checkpoint costs per epoch: writing one for the default network (10 classes) with SGD momentum buffers, as
/// the trainer does after every epoch (serialize, SHA-256, write, flush to disk, rename, flush the folder, prune to
/// the newest two), with and without the weight average and the best epoch's state; and reading one back.
/// </summary>
[SimpleJob(launchCount: 1, warmupCount: 2, iterationCount: 8)]
[MemoryDiagnoser(false)]
public class CheckpointBenchmarks
{
    private BatchNormCnnNetwork _network = null!;
    private optim.Optimizer _optimizer = null!;
    private CheckpointStore _store = null!;
    private string _directory = null!;
    private TrainingHistory _history = null!;
    private StateSnapshotPair? _extra;
    private int _epoch;

    /// <summary>Whether the checkpoint also holds the weight average and the best epoch's state (two more copies of the state).</summary>
    [Params(false, true)]
    public bool Extras { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var a = NetworkArchitecture.Default();
        _network = new BatchNormCnnNetwork(a, seed: 1);
        _optimizer = optim.SGD(_network.parameters(), 0.1, 0.9, 0, 5e-4, true);
        _network.train();
        using (var scope = torch.NewDisposeScope())
        {
            var x = torch.rand(8, 784) * 255;
            var y = torch.tensor(new long[] { 0, 1, 2, 3, 4, 5, 6, 7 });
            nn.functional.cross_entropy(_network.call(x), y).backward();
            _optimizer.step();
        }

        _directory = Directory.CreateTempSubdirectory("bnmlnet-bench-ckpt-").FullName;
        _store = new CheckpointStore(_directory, keep: 2);
        _history = new TrainingHistory();
        _extra = Extras ? new StateSnapshotPair(new StateSnapshot(_network), new StateSnapshot(_network)) : null;
        Console.WriteLine($"// checkpoint size: {new FileInfo(Save()).Length:N0} bytes");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _extra?.Best.Dispose();
        _extra?.Average.Dispose();
        _optimizer.Dispose();
        _network.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    [Benchmark]
    public string Save() => _store.Save(++_epoch, stream => Checkpoint.Write(stream, "{}",
        new CheckpointProgress(_epoch, _epoch * 469L, 0, false, 1, double.NegativeInfinity, 0, 0, new()), _history,
        new Checkpoint.Parts(_network, _optimizer, _extra?.Best.Tensors, _extra?.Average.Tensors)));

    [Benchmark]
    public int Read() => _store.LoadLatest()!.Progress.CompletedEpochs;

    private sealed record StateSnapshotPair(StateSnapshot Best, StateSnapshot Average);
}
