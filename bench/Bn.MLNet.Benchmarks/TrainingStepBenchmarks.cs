using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Bn.MLNet.Benchmarks;

/// <summary>
/// Where one training step of the default network goes (batch 128 of real Fashion-MNIST images, SGD with Nesterov
/// momentum and weight decay, channels-last convolutions, float32 or bfloat16 convolutions as <c>train</c> runs them on a
/// CPU with or without bfloat16 instructions, libtorch's default thread count): <see cref="Step"/> is a whole step, every
/// other benchmark one piece of it at the network's own shapes, forward and backward where it has both: each layer on the
/// input it receives in the network (autograd through that layer alone, with an upstream gradient of its output's
/// shape), the loss, the optimizer's update, and the data side (the natural-image recipe's crop and flip of a batch,
/// and the input tensor). The pieces' sum against the step shows what autograd and the rest add.
/// </summary>
[Config(typeof(TrainingStepConfig))]
public class TrainingStepBenchmarks
{
    private const int Batch = 128;
    private BatchNormCnnNetwork _network = null!;
    private optim.Optimizer _optimizer = null!;
    private float[] _features = [];
    private long[] _labels = [];
    private BatchAugmenter _augmenter = null!;
    private readonly List<(Tensor Input, Tensor Upstream)> _layerInputs = [];
    private Tensor _logits = null!;
    private Tensor _labelTensor = null!;

    /// <summary>Convolution precision in training: "float32" or "bfloat16".</summary>
    [Params("bfloat16", "float32")]
    public string Precision { get; set; } = "";

    /// <summary>The pieces: "step" (the whole step), a layer ("features.0", …, "classifier.0", …, "logits"), "loss", "optimizer", "augment", "input".</summary>
    [ParamsSource(nameof(Pieces))]
    public string Piece { get; set; } = "";

    /// <summary>The pieces of the default network's step.</summary>
    public static IEnumerable<string> Pieces()
    {
        var network = new BatchNormCnnNetwork(NetworkArchitecture.Default());
        var names = network.Layers.Features.Select((_, i) => $"features.{i}").Concat(network.Layers.Classifier.Select((_, i) => $"classifier.{i}"));
        network.Dispose();
        return new[] { "step" }.Concat(names).Concat(["logits", "loss", "optimizer", "augment", "input"]);
    }

    /// <summary>Builds the network and optimizer, reads a batch, and records every layer's input in one training forward pass.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var architecture = NetworkArchitecture.Default();
        architecture.BFloat16Convolutions = Precision == "bfloat16";
        _network = new BatchNormCnnNetwork(architecture, seed: 1);
        _network.train();
        _optimizer = optim.SGD(_network.parameters(), 0.05, momentum: 0.9, nesterov: true, weight_decay: 5e-4);
        var data = FashionMnist.Read(null, FashionMnistSplit.Train, Batch);
        _features = data.Images.Pixels.Select(b => (float)b).ToArray();
        _labels = data.Labels.Select(l => (long)l).ToArray();
        _augmenter = BatchAugmenter.Create(new TrainerOptions().UseNaturalImageRecipe(), 1, 28, 28)!;
        _augmenter.StartEpoch(new Random(1));
        _labelTensor = torch.tensor(_labels);
        for (int i = 0; i < 3; i++)
            Step();   // the bfloat16 guards check their shapes here, not in the measured steps
        RecordLayerInputs();
    }

    /// <summary>Releases the tensors.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var (input, upstream) in _layerInputs)
        {
            input.Dispose();
            upstream.Dispose();
        }

        _logits.Dispose();
        _labelTensor.Dispose();
        _optimizer.Dispose();
        _network.Dispose();
    }

    /// <summary>The piece named by <see cref="Piece"/>.</summary>
    [Benchmark]
    public float Run()
    {
        switch (Piece)
        {
            case "step":
                return Step();
            case "loss":
                return Loss();
            case "optimizer":
                _optimizer.step();
                return 0;
            case "augment":
                return _augmenter.Apply(_features, Batch)[0];
            case "input":
                using (var x = torch.tensor(_features, [Batch, 1, 28, 28]))
                    return x.shape[0];
            default:
                return Layer(LayerIndex(Piece));
        }
    }

    private float Step()
    {
        using DisposeScope scope = torch.NewDisposeScope();
        Tensor x = torch.tensor(_features, [Batch, 1, 28, 28]);
        Tensor loss = nn.functional.cross_entropy(_network.call(x), _labelTensor);
        _optimizer.zero_grad();
        loss.backward();
        _optimizer.step();
        return loss.item<float>();
    }

    private float Loss()
    {
        using DisposeScope scope = torch.NewDisposeScope();
        Tensor logits = _logits.detach().requires_grad_(true);
        Tensor loss = nn.functional.cross_entropy(logits, _labelTensor);
        loss.backward();
        return loss.item<float>();
    }

    /// <summary>Forward and backward of layer <paramref name="index"/> alone on the input it gets in the network.</summary>
    private float Layer(int index)
    {
        using DisposeScope scope = torch.NewDisposeScope();
        var (recorded, upstream) = _layerInputs[index];
        Tensor input = recorded.detach().requires_grad_(true);
        Tensor y = Call(index, input);
        y.backward([upstream]);
        foreach (Parameter p in Module(index).parameters())
            p.grad = null;
        return 0;
    }

    private Tensor Call(int index, Tensor x)
    {
        var layers = _network.Layers;
        if (index < layers.Features.Count && layers.FeatureRoles[index] == LayerRole.Conv && _network.Architecture.BFloat16Convolutions)
            return _network.BFloat16Guards[index].Forward((Conv2d)layers.Features[index], x, null);
        return Module(index).call(x);
    }

    private nn.Module<Tensor, Tensor> Module(int index)
    {
        var layers = _network.Layers;
        return index < layers.Features.Count ? layers.Features[index]
            : index < layers.Features.Count + layers.Classifier.Count ? layers.Classifier[index - layers.Features.Count]
            : layers.Output;
    }

    private int LayerIndex(string piece)
    {
        var layers = _network.Layers;
        return piece == "logits" ? layers.Features.Count + layers.Classifier.Count
            : piece.StartsWith("features.", StringComparison.Ordinal) ? int.Parse(piece["features.".Length..])
            : layers.Features.Count + int.Parse(piece["classifier.".Length..]);
    }

    /// <summary>One training forward pass layer by layer, keeping each layer's input and a random upstream gradient of its output's shape.</summary>
    private void RecordLayerInputs()
    {
        using var noGrad = torch.no_grad();
        using Tensor raw = torch.tensor(_features, [Batch, 1, 28, 28]);
        int count = _network.Layers.Features.Count + _network.Layers.Classifier.Count + 1;
        Tensor x = _network.Prepare(raw);
        using var generator = new torch.Generator(2);
        for (int i = 0; i < count; i++)
        {
            if (i == _network.Layers.Features.Count)
                x = x.flatten(1);
            Tensor y = Call(i, x);
            Tensor upstream = torch.randn(y.shape, generator: generator);
            if (y.dim() == 4)
                upstream = ChannelsLast.From(upstream);   // the layout the network's gradients have
            _layerInputs.Add((x.detach().clone(), upstream));
            x = y;
        }

        _logits = x.detach().clone();
    }
}

/// <summary>In process (no extra build folder with another copy of libtorch): 2 warm-ups, 8 iterations.</summary>
public sealed class TrainingStepConfig : ManualConfig
{
    /// <summary>Creates the config.</summary>
    public TrainingStepConfig()
    {
        AddJob(Job.Default
            .WithLaunchCount(1)
            .WithWarmupCount(2)
            .WithIterationCount(8)
            .WithToolchain(InProcessEmitToolchain.Instance)
            .WithId("InProcess"));
    }
}
