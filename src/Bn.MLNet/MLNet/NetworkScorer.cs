using Bn.MLNet.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet;

/// <summary>
/// Runs the eval-mode network on batches of rows under no_grad and copies softmax probabilities (and optionally the
/// embedding) into managed buffers; every tensor is disposed before returning. Safe to call from several threads:
/// the network is only read (eval mode is set once, before any call), and libtorch's grad mode and TorchSharp's
/// dispose scopes are per thread. With test-time flip averaging the probabilities are those of
/// <see cref="FlipAveraging"/> (one forward pass over the rows and their mirrors) and the embedding is the un-flipped
/// rows' embedding.
/// </summary>
internal sealed class NetworkScorer
{
    private readonly BatchNormCnnNetwork _network;
    private readonly bool _flipAveraging;
    private volatile bool _disposed;

    public NetworkScorer(BatchNormCnnNetwork network, int featureLength, int classCount, bool flipAveraging)
    {
        _network = network;
        _flipAveraging = flipAveraging;
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
    }

    public NetworkTask Task { get; }

    public int FeatureLength { get; }

    public int ClassCount { get; }

    /// <summary>Values per row in the scores buffer: the class probabilities (multiclass), the logit and its probability (binary), the prediction (regression).</summary>
    public int ScoreWidth { get; }

    public int EmbeddingSize { get; }

    public void MarkDisposed() => _disposed = true;

    /// <summary>Scores <paramref name="rows"/> rows of <paramref name="features"/> (row-major) into <paramref name="scores"/> (<see cref="ScoreWidth"/> per row) and the embedding.</summary>
    public void Score(float[] features, int rows, float[]? scores, float[]? embedding)
    {
        ObjectDisposedException.ThrowIf(_disposed, typeof(BatchNormCnnTransformer));
        if (rows <= 0)
            return;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor x = torch.tensor(features.AsMemory(0, rows * FeatureLength), [rows, (long)FeatureLength]).to(_network.Device);
        // Flip averaging scores the rows and their mirrors (2N rows) in the same pass; the embedding alone needs no mirrors.
        Tensor input = _flipAveraging && scores is not null ? FlipAveraging.WithMirrors(x, _network.Architecture) : x;
        // One pass through the network when both outputs are wanted.
        var (output, embedded) = (scores, embedding) switch
        {
            (not null, not null) => _network.EvalOutputAndEmbedding(input),
            (not null, null) => (_network.forward(input), null),
            _ => ((Tensor?)null, _network.Embed(input)),
        };
        if (scores is not null)
            Scores(output!).cpu().data<float>().CopyTo(scores.AsSpan(0, rows * ScoreWidth), 0, 0);

        if (embedding is not null)
        {
            // The first N rows: the un-flipped images' embedding.
            Tensor e = embedded!.narrow(0, 0, rows).cpu().contiguous();
            e.data<float>().CopyTo(embedding.AsSpan(0, rows * EmbeddingSize), 0, 0);
        }
    }

    /// <summary>The scores of the network's output, <see cref="ScoreWidth"/> per row.</summary>
    private Tensor Scores(Tensor output) => Task switch
    {
        NetworkTask.BinaryClassification => torch.cat([output, torch.sigmoid(output)], 1),
        NetworkTask.Regression => output,
        _ => _flipAveraging ? FlipAveraging.AverageProbabilities(output) : torch.nn.functional.softmax(output, 1),
    };

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
