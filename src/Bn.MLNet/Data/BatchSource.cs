using Microsoft.ML;
using static TorchSharp.torch;

namespace Bn.MLNet.Data;

/// <summary>
/// Rows for <see cref="Training.Trainer"/> and <see cref="Training.Evaluation"/>: features (C×H×W values per row, or N
/// values of tabular data) with a label, read one epoch at a time in mini-batches. Create one with <see cref="FromArrays(float[], int[], int, int, int?)"/>, <see cref="FromByteArrays"/>,
/// <see cref="FromTensors"/> or <see cref="FromDataView"/>; the trainer reads it without copying the data set (a
/// data-view source streams its rows through a bounded shuffle buffer).
/// </summary>
/// <remarks>
/// Shuffling is deterministic: epoch <c>e</c> of a source with seed <c>s</c> always yields the same order. A source holds
/// reusable buffers, so enumerate one epoch at a time per source.
/// </remarks>
public abstract class BatchSource
{
    private protected BatchSource()
    {
    }

    /// <summary>Feature values per row (C×H×W for images).</summary>
    public abstract int FeatureLength { get; }

    /// <summary>Rows per epoch when known without a pass over the data, otherwise <see langword="null"/>.</summary>
    public abstract long? RowCount { get; }

    /// <summary>What a resumed run must find unchanged about this source: its schema, seed and shuffling (not its values).</summary>
    internal abstract string Describe();

    /// <summary>What the data is, for error messages (for example "the training data"); null: named by its role.</summary>
    internal string? DataName { get; init; }

    /// <summary>
    /// Rows that are in memory: <paramref name="labels"/>[i] is the zero-based class of row i, whose
    /// <paramref name="featureLength"/> values are <paramref name="features"/>[i·featureLength ..]. The arrays are kept, not copied.
    /// </summary>
    /// <param name="features">Row-major features.</param>
    /// <param name="labels">Zero-based class index per row.</param>
    /// <param name="featureLength">Values per row.</param>
    /// <param name="seed">Shuffling seed. Default 0.</param>
    /// <param name="classCount">Number of classes; null infers the largest label + 1.</param>
    /// <exception cref="ArgumentException">The lengths disagree or a label is negative (or not below <paramref name="classCount"/>).</exception>
    public static BatchSource FromArrays(float[] features, int[] labels, int featureLength, int seed = 0, int? classCount = null) =>
        new TensorBatchSource(features, labels, featureLength, seed, classCount);

    /// <summary>
    /// Rows that are in memory with a number per row as the label (regression): <paramref name="targets"/>[i] belongs to
    /// the row at <paramref name="features"/>[i·featureLength ..]. The arrays are kept, not copied.
    /// </summary>
    /// <param name="features">Row-major features.</param>
    /// <param name="targets">The label of each row (finite).</param>
    /// <param name="featureLength">Values per row.</param>
    /// <param name="seed">Shuffling seed. Default 0.</param>
    /// <exception cref="ArgumentException">The lengths disagree or a target is NaN or infinite.</exception>
    public static BatchSource FromTargets(float[] features, float[] targets, int featureLength, int seed = 0) =>
        new TensorBatchSource(features, targets, featureLength, seed);

    /// <summary>
    /// Byte rows such as raw pixels (kept, not copied; converted to float one batch at a time) with byte class indices.
    /// </summary>
    /// <inheritdoc cref="FromArrays(float[], int[], int, int, int?)"/>
    public static BatchSource FromByteArrays(byte[] features, byte[] labels, int featureLength, int seed = 0, int? classCount = null) =>
        new TensorBatchSource(features, labels, featureLength, seed, classCount);

    /// <summary>
    /// Copies a features tensor (N×featureLength, or N×C×H×W flattened per row; any numeric type and device) and a labels
    /// tensor (N integer class indices) into managed arrays. The tensors are neither kept nor disposed.
    /// </summary>
    /// <param name="features">N rows of features.</param>
    /// <param name="labels">N zero-based class indices.</param>
    /// <param name="seed">Shuffling seed. Default 0.</param>
    /// <param name="classCount">Number of classes; null infers the largest label + 1.</param>
    /// <exception cref="ArgumentException">The shapes disagree, the labels are not integers, or a label is out of range.</exception>
    public static BatchSource FromTensors(Tensor features, Tensor labels, int seed = 0, int? classCount = null) =>
        new TensorBatchSource(features, labels, seed, classCount);

    /// <summary>
    /// Streams the rows of an ML.NET <see cref="IDataView"/> (never materialized): a known-size vector column of Single,
    /// Byte or Double and a key-typed label column (key k is class k − 1). Shuffled rows pass through a buffer of at most
    /// <paramref name="shuffleBufferSize"/> rows.
    /// </summary>
    /// <param name="data">The data; read once per epoch.</param>
    /// <param name="featureColumnName">The feature column.</param>
    /// <param name="labelColumnName">The key-typed label column.</param>
    /// <param name="featureLength">The feature vector's length.</param>
    /// <param name="shuffleBufferSize">Rows held for shuffling. Default 8192.</param>
    /// <param name="seed">Shuffling seed. Default 0.</param>
    /// <exception cref="ArgumentException">A column is missing or has the wrong type or length; the message names it.</exception>
    public static BatchSource FromDataView(IDataView data, string featureColumnName, string labelColumnName, int featureLength, int shuffleBufferSize = 8192, int seed = 0) =>
        new DataViewBatchSource(data, featureColumnName, labelColumnName, featureLength, shuffleBufferSize, seed);

    /// <summary>
    /// Enumerates one epoch. The returned <see cref="MiniBatch"/> instance and its arrays are reused: consume each batch
    /// before moving to the next. The last batch may hold fewer than <paramref name="batchSize"/> rows.
    /// </summary>
    /// <param name="batchSize">Rows per batch (at least 1).</param>
    /// <param name="epoch">Zero-based epoch number, mixed into the shuffling seed so each epoch has its own order.</param>
    /// <param name="shuffle">Whether to shuffle rows (deterministically from the source's seed and <paramref name="epoch"/>).</param>
    /// <param name="cancellationToken">Checked between batches.</param>
    internal abstract IEnumerable<MiniBatch> ReadEpoch(int batchSize, int epoch, bool shuffle, CancellationToken cancellationToken = default);
}
