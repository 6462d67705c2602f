namespace Bn.MLNet.Data;

/// <summary>
/// A source of training mini-batches: one pass over the data per call to <see cref="ReadEpoch"/>.
/// Implementations stream their rows and reuse one <see cref="MiniBatch"/> buffer between batches.
/// </summary>
public interface IBatchSource
{
    /// <summary>Number of feature values per row (C×H×W for images).</summary>
    int FeatureLength { get; }

    /// <summary>
    /// Enumerates one epoch. The returned <see cref="MiniBatch"/> instance and its arrays are reused:
    /// consume each batch before moving to the next. The last batch may hold fewer than <paramref name="batchSize"/> rows.
    /// </summary>
    /// <param name="batchSize">Rows per batch (at least 1).</param>
    /// <param name="epoch">Zero-based epoch number, mixed into the shuffling seed so each epoch has its own order.</param>
    /// <param name="shuffle">Whether to shuffle rows (deterministically from the source's seed and <paramref name="epoch"/>).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    IEnumerable<MiniBatch> ReadEpoch(int batchSize, int epoch, bool shuffle, CancellationToken cancellationToken = default);
}
