using Bn.MLNet.Networks;
using Bn.MLNet.Onnx;
using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet;

/// <summary>
/// Scores batches of rows into managed buffers with the transformer's <see cref="ScoringEngine"/>: ONNX Runtime
/// (<see cref="OnnxRuntimeScorer"/>) or libtorch, which runs the eval-mode network under no_grad, with batch normalization
/// folded into the layer before it where it can be, and disposes every tensor before returning. The engine is chosen at
/// the first call (<see cref="ScoringEngine.Automatic"/>) and the choice is logged. Safe to call from several threads: the
/// networks are only read (eval mode is set before any call), libtorch's grad mode and TorchSharp's dispose scopes are
/// per thread, and ONNX Runtime runs one session concurrently. With test-time flip averaging the probabilities are those
/// of <see cref="FlipAveraging"/> (one forward pass over the rows and their mirrors) and the embedding is the un-flipped
/// rows' embedding.
/// </summary>
internal sealed class NetworkScorer : IDisposable
{
    private readonly BatchNormCnnNetwork _network;
    private readonly bool _flipAveraging;
    private readonly ScoringEngine _engine;
    private readonly IChannelProvider _log;
    private readonly Lazy<Engine> _active;
    private volatile bool _disposed;

    /// <param name="network">The eval-mode network as the transformer's inference mode defines it; the caller owns it.</param>
    /// <param name="featureLength">Values per row.</param>
    /// <param name="classCount">Classes (multiclass).</param>
    /// <param name="flipAveraging">Test-time flip averaging.</param>
    /// <param name="engine">The requested engine.</param>
    /// <param name="log">Receives the engine choice.</param>
    /// <exception cref="InvalidOperationException"><see cref="ScoringEngine.OnnxRuntime"/> was requested and cannot score here.</exception>
    public NetworkScorer(BatchNormCnnNetwork network, int featureLength, int classCount, bool flipAveraging, ScoringEngine engine, IChannelProvider log)
    {
        _network = network;
        _flipAveraging = flipAveraging;
        _engine = engine;
        _log = log;
        Task = network.Architecture.Task;
        FeatureLength = featureLength;
        ClassCount = classCount;
        EmbeddingSize = network.EmbeddingSize;
        ScoreWidth = Task switch
        {
            NetworkTask.BinaryClassification => 2,
            NetworkTask.Regression => 1,
            _ => classCount,
        };
        if (engine == ScoringEngine.OnnxRuntime && OnnxRuntimeProblem() is { } problem)
            throw new InvalidOperationException($"BatchNormCnnOptions.ScoringEngine is OnnxRuntime, but {problem}. Use ScoringEngine.Automatic or LibTorch.");
        _active = new Lazy<Engine>(Choose, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public NetworkTask Task { get; }

    public int FeatureLength { get; }

    public int ClassCount { get; }

    /// <summary>Values per row in the scores buffer: the class probabilities (multiclass), the logit and its probability (binary), the prediction (regression).</summary>
    public int ScoreWidth { get; }

    public int EmbeddingSize { get; }

    /// <summary>The engine that scores (chosen now if no row was scored yet).</summary>
    public ScoringEngine ActiveEngine
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, typeof(BatchNormCnnTransformer));
            return _active.Value.Onnx is null ? ScoringEngine.LibTorch : ScoringEngine.OnnxRuntime;
        }
    }

    /// <summary>Scores <paramref name="rows"/> rows of <paramref name="features"/> (row-major) into <paramref name="scores"/> (<see cref="ScoreWidth"/> per row) and the embedding.</summary>
    public void Score(float[] features, int rows, float[]? scores, float[]? embedding)
    {
        ObjectDisposedException.ThrowIf(_disposed, typeof(BatchNormCnnTransformer));
        if (rows <= 0)
            return;
        Engine engine = _active.Value;

        // Passes within ForwardPasses' activation budget on both engines: libtorch would page-fault larger activations in
        // on every pass, and ONNX Runtime's arena keeps the largest blocks a session was asked for.
        foreach ((int start, int count) in ForwardPasses.Split(rows, _network.Architecture))
        {
            if (engine.Onnx is { } onnx)
                onnx.Score(features, start, count, scores, embedding);
            else
                TorchPass(engine.Torch!, features, start, count, scores, embedding);
        }
    }

    /// <summary>Releases the engine's session or folded copy (not the network, which the transformer owns).</summary>
    public void Dispose()
    {
        _disposed = true;
        if (_active.IsValueCreated)
            _active.Value.Dispose();
    }

    /// <summary>Why ONNX Runtime cannot score this network, or null when it can.</summary>
    private string? OnnxRuntimeProblem() =>
        _network.Device.type != DeviceType.CPU
            ? $"the network is on {_network.Device} (MLContext.GpuDeviceId) and ONNX Runtime scores on the CPU"
            : OnnxRuntimeAvailability.Problem;

    private Engine Choose()
    {
        using IChannel ch = _log.Start("Scoring");
        string? problem = _engine == ScoringEngine.LibTorch ? "ScoringEngine is LibTorch" : OnnxRuntimeProblem();
        if (problem is null)
        {
            int threads = Math.Max(1, torch.get_num_threads());
            try
            {
                var onnx = OnnxRuntimeScorer.Create(_network, _flipAveraging, threads);
                ch.Info(MessageSensitivity.None, "{0}", $"BatchNormCnn: scoring with ONNX Runtime, {threads} intra-op threads.");
                return new Engine(onnx, null, OwnsNetwork: false);
            }
            catch (OnnxRuntimeException e) when (_engine == ScoringEngine.Automatic)
            {
                problem = $"ONNX Runtime refused the network's graph ({e.Message})";
            }
        }

        // Folding gives the same eval-mode function with fewer operations; group and layer normalization do not fold.
        bool folds = _network.Architecture.Normalization is not (NormalizationKind.None or NormalizationKind.Group or NormalizationKind.Layer);
        BatchNormCnnNetwork torchNetwork = folds ? _network.FoldBatchNorm() : _network;
        ch.Info(MessageSensitivity.None, "{0}", $"BatchNormCnn: scoring with libtorch{(folds ? ", batch normalization folded" : string.Empty)} ({problem}).");
        return new Engine(null, torchNetwork, OwnsNetwork: folds);
    }

    /// <summary>One forward pass over rows [start, start + n): the scores and the embedding into their slots of the buffers.</summary>
    private void TorchPass(BatchNormCnnNetwork network, float[] features, int start, int n, float[]? scores, float[]? embedding)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor x = torch.tensor(features.AsMemory(start * FeatureLength, n * FeatureLength), [n, (long)FeatureLength]).to(network.Device);
        // One pass through the network when both outputs are wanted.
        var (output, embedded) = (scores, embedding) switch
        {
            (not null, not null) => network.EvalOutputAndEmbedding(x),
            (not null, null) => (network.forward(x), null),
            _ => ((Tensor?)null, network.Embed(x)),
        };
        if (scores is not null)
            Scores(network, x, output!).cpu().data<float>().CopyTo(scores.AsSpan(start * ScoreWidth, n * ScoreWidth), 0, 0);
        if (embedding is not null)
            embedded!.cpu().contiguous().data<float>().CopyTo(embedding.AsSpan(start * EmbeddingSize, n * EmbeddingSize), 0, 0);
    }

    /// <summary>The scores of the network's <paramref name="output"/> for the rows <paramref name="x"/>, <see cref="ScoreWidth"/> per row.</summary>
    private Tensor Scores(BatchNormCnnNetwork network, Tensor x, Tensor output) => Task switch
    {
        NetworkTask.BinaryClassification => torch.cat([output, torch.sigmoid(output)], 1),
        NetworkTask.Regression => output,
        _ when _flipAveraging => FlipAveraging.Average(output, network.forward(FlipAveraging.Mirror(x, network.Architecture))),
        _ => torch.nn.functional.softmax(output, 1),
    };

    /// <summary>The chosen engine: an ONNX Runtime session, or the network libtorch runs (a folded copy this scorer owns, or the transformer's).</summary>
    private sealed record Engine(OnnxRuntimeScorer? Onnx, BatchNormCnnNetwork? Torch, bool OwnsNetwork) : IDisposable
    {
        public void Dispose()
        {
            Onnx?.Dispose();
            if (OwnsNetwork)
                Torch?.Dispose();
        }
    }

    /// <summary>
    /// Multiclass: index of the largest probability of row <paramref name="row"/>, as a 1-based key; the missing key 0
    /// when the row's scores are NaN (a NaN or infinite input value), as ML.NET's own scorers do.
    /// </summary>
    public uint PredictedKey(float[] scores, int row)
    {
        var span = scores.AsSpan(row * ClassCount, ClassCount);
        if (float.IsNaN(span[0]))
            return 0;
        int best = 0;
        for (int i = 1; i < span.Length; i++)
        {
            if (float.IsNaN(span[i]))
                return 0;
            if (span[i] > span[best])
                best = i;
        }

        return (uint)best + 1;
    }

    /// <summary>Binary: whether row <paramref name="row"/>'s score is positive (probability above ½).</summary>
    public bool PredictedTrue(float[] scores, int row) => scores[row * ScoreWidth] > 0;
}
