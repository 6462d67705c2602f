using static TorchSharp.torch;

namespace Bn.MLNet.Data;

/// <summary>
/// A <see cref="BatchSource"/> over data already in memory: features as <see cref="float"/> or <see cref="byte"/>
/// rows (bytes are converted to float per batch, so byte images stay 4× smaller) or a TorchSharp tensor, and labels as
/// zero-based class indices. When shuffling, each epoch uses a full permutation drawn from
/// <c>new Random(seed + epoch × 1,000,003)</c>, so the same seed and epoch always give the same order.
/// </summary>
/// <remarks>The data is read-only; each <see cref="ReadEpoch"/> enumeration has its own <see cref="MiniBatch"/>, so
/// separate enumerations may run concurrently.</remarks>
internal sealed class TensorBatchSource : BatchSource
{
    private readonly float[]? _floatFeatures;
    private readonly byte[]? _byteFeatures;
    private readonly int[] _labels;
    private readonly float[]? _targets;

    /// <summary>Wraps float rows (the arrays are kept, not copied).</summary>
    /// <param name="features">Row-major features, <paramref name="labels"/>.Length × <paramref name="featureLength"/> values.</param>
    /// <param name="labels">Zero-based class index per row.</param>
    /// <param name="featureLength">Values per row.</param>
    /// <param name="seed">Shuffling seed.</param>
    /// <param name="classCount">Number of classes; null infers the largest label + 1.</param>
    public TensorBatchSource(float[] features, int[] labels, int featureLength, int seed = 0, int? classCount = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        CheckShape(features.LongLength, labels.Length, featureLength, nameof(features));
        _floatFeatures = features;
        _labels = labels;
        FeatureLength = featureLength;
        Seed = seed;
        ClassCount = CheckLabels(labels, classCount);
    }

    /// <summary>Wraps float rows with a numeric target per row (regression; the arrays are kept, not copied).</summary>
    /// <param name="features">Row-major features, <paramref name="targets"/>.Length × <paramref name="featureLength"/> values.</param>
    /// <param name="targets">The label of each row (finite).</param>
    /// <param name="featureLength">Values per row.</param>
    /// <param name="seed">Shuffling seed.</param>
    public TensorBatchSource(float[] features, float[] targets, int featureLength, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(targets);
        CheckShape(features.LongLength, targets.Length, featureLength, nameof(features));
        int bad = Array.FindIndex(targets, t => !float.IsFinite(t));
        if (bad >= 0)
            throw new ArgumentException($"Target of row {bad} is {targets[bad]}; targets must be finite.", nameof(targets));
        _floatFeatures = features;
        _targets = targets;
        _labels = new int[targets.Length];
        FeatureLength = featureLength;
        Seed = seed;
    }

    /// <summary>Wraps byte rows such as raw pixels (kept, not copied; converted to float batch by batch).</summary>
    /// <param name="features">Row-major features, <paramref name="labels"/>.Length × <paramref name="featureLength"/> bytes.</param>
    /// <param name="labels">Zero-based class index per row.</param>
    /// <param name="featureLength">Values per row.</param>
    /// <param name="seed">Shuffling seed.</param>
    /// <param name="classCount">Number of classes; null infers the largest label + 1.</param>
    public TensorBatchSource(byte[] features, byte[] labels, int featureLength, int seed = 0, int? classCount = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        CheckShape(features.LongLength, labels.Length, featureLength, nameof(features));
        _byteFeatures = features;
        _labels = Array.ConvertAll(labels, b => (int)b);
        FeatureLength = featureLength;
        Seed = seed;
        ClassCount = CheckLabels(_labels, classCount);
    }

    /// <summary>
    /// Copies a features tensor (N × featureLength, or N × C × H × W which is flattened per row; any numeric type, any
    /// device) and a labels tensor (N integer class indices) into managed arrays. The tensors are not kept or disposed.
    /// </summary>
    /// <param name="features">N rows of features.</param>
    /// <param name="labels">N zero-based class indices.</param>
    /// <param name="seed">Shuffling seed.</param>
    /// <param name="classCount">Number of classes; null infers the largest label + 1.</param>
    public TensorBatchSource(Tensor features, Tensor labels, int seed = 0, int? classCount = null)
    {
        ArgumentNullException.ThrowIfNull(features);
        ArgumentNullException.ThrowIfNull(labels);
        if (features.ndim < 2 || features.shape[0] < 1)
        {
            throw new ArgumentException(
                $"Features tensor must be N×featureLength (or N×C×H×W) with N ≥ 1; its shape is [{string.Join(", ", features.shape)}].",
                nameof(features));
        }

        long rows = features.shape[0];
        long length = features.numel() / rows;
        if (labels.numel() != rows || (labels.ndim != 1 && !(labels.ndim == 2 && labels.shape[1] == 1)))
        {
            throw new ArgumentException(
                $"Labels tensor must hold one class index per row ({rows}); its shape is [{string.Join(", ", labels.shape)}].",
                nameof(labels));
        }

        if (labels.dtype is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64
            or ScalarType.ComplexFloat32 or ScalarType.ComplexFloat64 or ScalarType.Bool)
        {
            throw new ArgumentException($"Labels tensor must have an integer type; it is {labels.dtype}.", nameof(labels));
        }

        if (length > int.MaxValue || rows > int.MaxValue)
        {
            throw new ArgumentException($"Features tensor is too large: {rows} rows of {length} values.", nameof(features));
        }

        using (var flat = features.detach().to(CPU).to_type(ScalarType.Float32).reshape(rows, length).contiguous())
        {
            _floatFeatures = flat.data<float>().ToArray();
        }

        using (var flatLabels = labels.detach().to(CPU).to_type(ScalarType.Int64).reshape(rows, 1).contiguous())
        {
            long[] values = flatLabels.data<long>().ToArray();
            _labels = new int[rows];
            for (int i = 0; i < values.Length; i++)
            {
                if (values[i] is < 0 or > int.MaxValue)
                {
                    throw new ArgumentException($"Labels tensor row {i} holds {values[i]}; expected a class index ≥ 0.", nameof(labels));
                }

                _labels[i] = (int)values[i];
            }
        }

        FeatureLength = (int)length;
        Seed = seed;
        ClassCount = CheckLabels(_labels, classCount);
    }

    /// <inheritdoc />
    public override int FeatureLength { get; }

    /// <inheritdoc />
    internal override string Describe() =>
        $"in-memory rows: {Count} × {FeatureLength} {(_byteFeatures is null ? "float" : "byte")} values, " +
        (_targets is null ? $"{ClassCount} classes" : "numeric targets") + $", shuffling seed {Seed}";

    /// <summary>Number of rows.</summary>
    public int Count => _labels.Length;

    /// <inheritdoc />
    public override long? RowCount => _labels.Length;

    /// <summary>Number of classes: labels are 0..ClassCount−1.</summary>
    public int ClassCount { get; }

    /// <summary>The shuffling seed.</summary>
    public int Seed { get; }

    /// <inheritdoc />
    internal override IEnumerable<MiniBatch> ReadEpoch(int batchSize, int epoch, bool shuffle, CancellationToken cancellationToken = default)
    {
        EpochShuffle.CheckArguments(batchSize, epoch);
        return Iterate(batchSize, epoch, shuffle, cancellationToken);
    }

    private IEnumerable<MiniBatch> Iterate(int batchSize, int epoch, bool shuffle, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        int n = _labels.Length;
        int[]? order = null;
        if (shuffle)
        {
            order = new int[n];
            for (int i = 0; i < n; i++)
            {
                order[i] = i;
            }

            var random = EpochShuffle.ForEpoch(Seed, epoch);
            for (int i = n - 1; i > 0; i--)
            {
                int j = random.Next(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
        }

        var batch = new MiniBatch(Math.Min(batchSize, Math.Max(n, 1)), FeatureLength);
        int f = FeatureLength;
        for (int start = 0; start < n; start += batch.Capacity)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int count = Math.Min(batch.Capacity, n - start);
            for (int k = 0; k < count; k++)
            {
                int row = order is null ? start + k : order[start + k];
                var destination = batch.Features.AsSpan(k * f, f);
                if (_floatFeatures is not null)
                {
                    _floatFeatures.AsSpan(row * f, f).CopyTo(destination);
                }
                else
                {
                    var source = _byteFeatures.AsSpan(row * f, f);
                    for (int i = 0; i < f; i++)
                    {
                        destination[i] = source[i];
                    }
                }

                batch.SetLabel(k, _targets is null ? _labels[row] : _targets[row]);
            }

            batch.Count = count;
            yield return batch;
        }
    }

    private static void CheckShape(long featureValues, int rows, int featureLength, string parameter)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(featureLength, 1);
        if (featureValues != (long)rows * featureLength)
        {
            throw new ArgumentException(
                $"Features hold {featureValues} values; {rows} labelled rows of {featureLength} need {(long)rows * featureLength}.",
                parameter);
        }
    }

    private static int CheckLabels(int[] labels, int? classCount)
    {
        if (classCount is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "The class count must be at least 1.");
        }

        int max = -1;
        for (int i = 0; i < labels.Length; i++)
        {
            int label = labels[i];
            if (label < 0 || (classCount is int c && label >= c))
            {
                throw new ArgumentException(
                    $"Label of row {i} is {label}; expected a class index 0..{(classCount is int cc ? (cc - 1).ToString() : "∞")}.",
                    nameof(labels));
            }

            max = Math.Max(max, label);
        }

        return classCount ?? Math.Max(max + 1, 1);
    }
}
