using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Data;

/// <summary>
/// A <see cref="BatchSource"/> that streams mini-batches from any <see cref="IDataView"/> through a row cursor,
/// so it never materializes the data set. Rows pass through a bounded shuffle buffer: at most
/// <see cref="ShuffleBufferSize"/> rows plus one batch are held at any time.
/// </summary>
/// <remarks>
/// <para>Feature column: a known-size vector of <see cref="float"/>, <see cref="byte"/> or <see cref="double"/>
/// (converted to float) whose length equals <see cref="FeatureLength"/>; sparse vectors are densified.
/// Label column: a key type (key value k becomes class index k−1, and a missing key (0) is an error), Boolean (binary
/// classification: false 0, true 1) or Single/Double (regression: the value; NaN and infinity are errors).
/// (A class loaded with <c>mlContext.Data.LoadFromEnumerable</c> whose <c>[KeyType(n)]</c> member holds the 0-based
/// index i exposes key value i+1, so it arrives here as class i; out-of-range members become the missing key 0.)</para>
/// <para>Shuffling uses <c>new Random(seed + epoch × 1,000,003)</c>. When the view <see cref="IDataView.CanShuffle"/>
/// and <see cref="UseSourceShuffling"/> is true, the cursor is also asked for a random order (seeded from the same
/// generator), which gives a full shuffle for in-memory views; the shuffle buffer then mixes further. Streaming views
/// (text files, enumerables) are shuffled by the buffer alone: a row can move at most about the buffer's size from
/// where the cursor produced it, so sorted sources need a large buffer.</para>
/// <para>Buffer: the shuffle buffer starts empty; the first rows fill it; then each new row takes the place of a
/// uniformly chosen buffered row, which goes to the batch; at the end of the cursor the buffer is drained in random
/// order. Its arrays are allocated once per instance (sized by <see cref="IDataView.GetRowCount"/> when the view
/// knows it) and reused across epochs, so enumerate one epoch at a time per instance.</para>
/// </remarks>
internal sealed class DataViewBatchSource : BatchSource
{
    private readonly IDataView _data;
    private readonly DataViewSchema.Column _featureColumn;
    private readonly DataViewSchema.Column _labelColumn;
    private float[]? _bufferFeatures;
    private float[]? _bufferLabels;
    private int _busy;

    /// <summary>Validates the columns and prepares streaming.</summary>
    /// <param name="data">The data; it is read once per epoch.</param>
    /// <param name="featureColumnName">A known-size vector column of Single, Byte or Double.</param>
    /// <param name="labelColumnName">A key-typed column of 2 to 1,000,000 classes, a Boolean column, or a Single or Double column.</param>
    /// <param name="featureLength">Expected vector length (C×H×W for images).</param>
    /// <param name="shuffleBufferSize">Maximum rows held for shuffling (at least 1).</param>
    /// <param name="seed">Shuffling seed.</param>
    /// <exception cref="ArgumentException">A column is missing or of the wrong type or length, or a label key has fewer
    /// than 2 or more than 1,000,000 values (the estimator's rule); the message names the column, its actual type and what
    /// was expected.</exception>
    public DataViewBatchSource(
        IDataView data,
        string featureColumnName,
        string labelColumnName,
        int featureLength,
        int shuffleBufferSize = 8192,
        int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentException.ThrowIfNullOrEmpty(featureColumnName);
        ArgumentException.ThrowIfNullOrEmpty(labelColumnName);
        ArgumentOutOfRangeException.ThrowIfLessThan(featureLength, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(shuffleBufferSize, 1);

        _data = data;
        _featureColumn = FindColumn(data.Schema, featureColumnName, "feature");
        _labelColumn = FindColumn(data.Schema, labelColumnName, "label");

        if (_featureColumn.Type is not VectorDataViewType vector
            || !FeatureVectorReader.IsSupported(vector.ItemType)
            || vector.Dimensions.Length == 0)
        {
            throw new ArgumentException(
                $"Feature column '{featureColumnName}' has type {_featureColumn.Type}; expected a known-size vector of Single, Byte "
                + $"or Double of length {featureLength}.",
                nameof(featureColumnName));
        }

        if (!vector.IsKnownSize || vector.Size != featureLength)
        {
            string actual = vector.IsKnownSize ? $"length {vector.Size}" : "unknown (variable) length";
            throw new ArgumentException(
                $"Feature column '{featureColumnName}' is a vector of {vector.ItemType} with {actual}; expected known length {featureLength}.",
                nameof(featureColumnName));
        }

        ClassCount = LabelClassCount(_labelColumn);
        FeatureLength = featureLength;
        ShuffleBufferSize = shuffleBufferSize;
        Seed = seed;

        if (_labelColumn.HasKeyValues())
        {
            VBuffer<ReadOnlyMemory<char>> names = default;
            _labelColumn.GetKeyValues(ref names);
            LabelKeyValues = names.DenseValues().Select(n => n.ToString()).ToArray();
        }
    }

    /// <inheritdoc />
    public override int FeatureLength { get; }

    /// <inheritdoc />
    internal override string Describe() =>
        $"data view: feature column '{_featureColumn.Name}' {_featureColumn.Type}, label column '{_labelColumn.Name}' {_labelColumn.Type}" +
        (LabelKeyValues is null ? string.Empty : $" [{string.Join(", ", LabelKeyValues)}]") +
        $", shuffling seed {Seed}, shuffle buffer {ShuffleBufferSize}" +
        (HoldOut is null ? string.Empty : $", {(HoldOut.Validation ? "held-out" : "training")} part of a {HoldOut.Fraction} hold-out (seed {HoldOut.Seed})");

    /// <summary>
    /// Number of classes: the label key type's count (class indices 0..ClassCount−1), 2 for a Boolean label (false = 0,
    /// true = 1), 0 for a numeric label (regression: the value is the target).
    /// </summary>
    public int ClassCount { get; }

    /// <summary>The classes of a label column: a key type's count, 2 for Boolean, 0 for Single or Double (regression).</summary>
    /// <exception cref="ArgumentException">Another type, or a key outside the class-count rule.</exception>
    private static int LabelClassCount(DataViewSchema.Column label)
    {
        switch (label.Type)
        {
            case KeyDataViewType key when ClassCountRule.IsValid(key.Count):
                return (int)key.Count;
            case KeyDataViewType key:
                throw new ArgumentException($"Label column '{label.Name}' is a key with {key.Count} values; expected {ClassCountRule.RangeText} classes.", "labelColumnName");
            case BooleanDataViewType:
                return 2;
            case NumberDataViewType n when n == NumberDataViewType.Single || n == NumberDataViewType.Double:
                return 0;
            default:
                throw new ArgumentException(
                    $"Label column '{label.Name}' has type {label.Type}; expected a key type (classes: convert it with mlContext.Transforms.Conversion.MapValueToKey), " +
                    "Boolean (binary classification) or Single (regression).", "labelColumnName");
        }
    }

    /// <summary>The label column's text key values (class names, by class index), or null when the column has none.</summary>
    public IReadOnlyList<string>? LabelKeyValues { get; }

    /// <summary>Maximum rows held for shuffling, besides the current batch.</summary>
    public int ShuffleBufferSize { get; }

    /// <summary>The shuffling seed.</summary>
    public int Seed { get; }

    /// <summary>The view's row count when it knows it without a pass, otherwise null.</summary>
    public override long? RowCount => HoldOut is null ? _data.GetRowCount() : null;

    /// <summary>
    /// A hold-out split: this source reads only its part of the rows (the training or the validation rows). Default
    /// null: every row.
    /// </summary>
    public HoldOutSplit? HoldOut { get; init; }

    /// <summary>
    /// Whether to ask a view that <see cref="IDataView.CanShuffle"/> for a randomly ordered cursor when shuffling
    /// (default true). Either way the rows also pass through the shuffle buffer and the order is deterministic per seed and epoch.
    /// </summary>
    public bool UseSourceShuffling { get; init; } = true;

    /// <inheritdoc />
    /// <exception cref="InvalidDataException">(During enumeration) a row has a missing label key (0), a feature vector
    /// of the wrong length, or a NaN or infinite feature value (also a Double outside Single's range); the message names
    /// the column, the row (its position in the cursor: the row index when not shuffled), the slot and the value.</exception>
    internal override IEnumerable<MiniBatch> ReadEpoch(int batchSize, int epoch, bool shuffle, CancellationToken cancellationToken = default)
    {
        EpochShuffle.CheckArguments(batchSize, epoch);
        return Iterate(batchSize, epoch, shuffle, cancellationToken);
    }

    private IEnumerable<MiniBatch> Iterate(int batchSize, int epoch, bool shuffle, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        long? rowCount = RowCount;
        int batchCapacity = rowCount is long known ? (int)Math.Clamp(known, 1, batchSize) : batchSize;
        var batch = new MiniBatch(batchCapacity, FeatureLength);
        var random = shuffle ? EpochShuffle.ForEpoch(Seed, epoch) : null;
        var cursorRandom = random is not null && UseSourceShuffling && _data.CanShuffle ? new Random(random.Next()) : null;

        using var reader = new RowReader(_data.GetRowCursor([_featureColumn, _labelColumn], cursorRandom), _featureColumn, _labelColumn, FeatureLength, ClassCount, DataName ?? "the data", HoldOut);
        IEnumerable<MiniBatch> full = random is null
            ? InOrder(reader, batch, cancellationToken)
            : Shuffled(reader, batch, random, rowCount is long n ? (int)Math.Clamp(n, 1, ShuffleBufferSize) : ShuffleBufferSize, cancellationToken);
        foreach (MiniBatch b in full)
        {
            yield return b;
        }

        // A full batch was yielded already; a partial one is the epoch's last.
        if (batch.Count > 0 && batch.Count < batch.Capacity)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return batch;
        }
    }

    /// <summary>The full batches of the rows in the cursor's order.</summary>
    private static IEnumerable<MiniBatch> InOrder(RowReader reader, MiniBatch batch, CancellationToken cancellationToken)
    {
        int f = batch.FeatureLength;
        while (reader.MoveNext())
        {
            ResetIfFull(batch);
            reader.Read(batch.Features.AsSpan(batch.Count * f, f), out float target);
            batch.SetLabel(batch.Count, target);
            if (++batch.Count == batch.Capacity)
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return batch;
                cancellationToken.ThrowIfCancellationRequested();
            }
        }
    }

    /// <summary>
    /// The full batches of the rows through the shuffle buffer of <paramref name="capacity"/> rows: fill it, then each new
    /// row replaces a uniformly chosen buffered row that goes to the batch, then drain it in random order.
    /// </summary>
    private IEnumerable<MiniBatch> Shuffled(RowReader reader, MiniBatch batch, Random random, int capacity, CancellationToken cancellationToken)
    {
        bool owned = Interlocked.Exchange(ref _busy, 1) == 0;
        try
        {
            var buffer = new ShuffleBuffer(RentBuffer(capacity, owned), batch.FeatureLength);
            while (reader.MoveNext())
            {
                if (buffer.Filled < capacity)
                {
                    buffer.Append(reader);
                    if ((buffer.Filled & 1023) == 0)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                    }

                    continue;
                }

                ResetIfFull(batch);
                buffer.Replace(random.Next(capacity), batch, reader);
                if (++batch.Count == batch.Capacity)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    yield return batch;
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }

            while (buffer.Filled > 0)
            {
                ResetIfFull(batch);
                buffer.Remove(random.Next(buffer.Filled), batch);
                if (++batch.Count == batch.Capacity)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    yield return batch;
                    cancellationToken.ThrowIfCancellationRequested();
                }
            }
        }
        finally
        {
            if (owned)
            {
                Volatile.Write(ref _busy, 0);
            }
        }
    }

    /// <summary>The instance's shuffle arrays when this enumeration owns them and they are large enough, else new ones (kept when owned).</summary>
    private (float[] Features, float[] Labels) RentBuffer(int capacity, bool owned)
    {
        if (owned && _bufferLabels is not null && _bufferLabels.Length >= capacity)
        {
            return (_bufferFeatures!, _bufferLabels);
        }

        var features = new float[(long)capacity * FeatureLength];
        var labels = new float[capacity];
        if (owned)
        {
            _bufferFeatures = features;
            _bufferLabels = labels;
        }

        return (features, labels);
    }

    /// <summary>Starts a new batch only when a row is about to be written, so the last yielded batch stays intact
    /// after the enumeration ends (e.g. under LINQ's Single or Last).</summary>
    private static void ResetIfFull(MiniBatch batch)
    {
        if (batch.Count == batch.Capacity)
        {
            batch.Count = 0;
        }
    }

    private static DataViewSchema.Column FindColumn(DataViewSchema schema, string name, string role)
    {
        var column = schema.GetColumnOrNull(name);
        if (column is null)
        {
            throw new ArgumentException(
                $"The data has no {role} column '{name}'. Its columns are: "
                + string.Join(", ", schema.Select(c => $"'{c.Name}' ({c.Type})")) + ".",
                role == "feature" ? "featureColumnName" : "labelColumnName");
        }

        return column.Value;
    }

    /// <summary>Reads the feature and label of the cursor's current row into float/int form.</summary>
    private sealed class RowReader : IDisposable
    {
        private readonly DataViewRowCursor _cursor;
        private readonly FeatureVectorReader _features;
        private readonly Func<float> _label;
        private readonly string _labelName;
        private readonly int _classCount;
        private readonly HoldOutSplit? _holdOut;
        private readonly ValueGetter<DataViewRowId>? _id;

        public RowReader(
            DataViewRowCursor cursor, DataViewSchema.Column featureColumn, DataViewSchema.Column labelColumn, int featureLength, int classCount, string dataName, HoldOutSplit? holdOut)
        {
            _cursor = cursor;
            _holdOut = holdOut;
            _id = holdOut is null ? null : cursor.GetIdGetter();
            _labelName = labelColumn.Name;
            _classCount = classCount;
            _features = FeatureVectorReader.Create(cursor, featureColumn, featureLength, dataName);
            _label = LabelReader(cursor, labelColumn);
        }

        /// <summary>Moves to the next row of this source's part.</summary>
        public bool MoveNext()
        {
            DataViewRowId id = default;
            while (_cursor.MoveNext())
            {
                if (_holdOut is null)
                    return true;
                _id!(ref id);
                if (_holdOut.Keeps(id))
                    return true;
            }

            return false;
        }

        /// <summary>Reads the current row: its features into <paramref name="destination"/>, its label as a number.</summary>
        public void Read(Span<float> destination, out float label)
        {
            _features.Read(destination);
            label = _label();
        }

        /// <summary>
        /// The label of the current row as a number: a key k as the class index k − 1 (a missing key 0, or one above
        /// the class count, is refused), a Boolean as 0 or 1, a number as itself (NaN and infinity refused).
        /// </summary>
        private Func<float> LabelReader(DataViewRowCursor cursor, DataViewSchema.Column column) => column.Type switch
        {
            KeyDataViewType { RawType: var t } when t == typeof(uint) => Key(Getter<uint, ulong>(cursor, column, static v => v)),
            KeyDataViewType { RawType: var t } when t == typeof(byte) => Key(Getter<byte, ulong>(cursor, column, static v => v)),
            KeyDataViewType { RawType: var t } when t == typeof(ushort) => Key(Getter<ushort, ulong>(cursor, column, static v => v)),
            KeyDataViewType { RawType: var t } when t == typeof(ulong) => Key(Getter<ulong, ulong>(cursor, column, static v => v)),
            KeyDataViewType { RawType: var t } => throw new ArgumentException($"Label column '{column.Name}' is a key of unsupported raw type {t.Name}."),
            BooleanDataViewType => Value(Getter<bool, float>(cursor, column, static b => b ? 1 : 0)),
            _ when column.Type == NumberDataViewType.Double => Value(Getter<double, float>(cursor, column, static d => (float)d)),
            _ => Value(Getter<float, float>(cursor, column, static f => f)),
        };

        private Func<float> Key(Func<ulong> key) => () =>
        {
            ulong k = key();
            if (k == 0)
            {
                throw new InvalidDataException(
                    $"Label column '{_labelName}' has a missing key value (0) at row {_cursor.Position}; every training row needs a class "
                    + $"(key values 1..{_classCount}).");
            }

            if (k > (ulong)_classCount)
                throw new InvalidDataException($"Label column '{_labelName}' has key value {k} at row {_cursor.Position}; expected 1..{_classCount}.");
            return k - 1;
        };

        private Func<float> Value(Func<float> value) => () =>
        {
            float v = value();
            if (!float.IsFinite(v))
            {
                throw new InvalidDataException(
                    $"Label column '{_labelName}' holds {v.ToString(System.Globalization.CultureInfo.InvariantCulture)} at row {_cursor.Position}; every training " +
                    "row needs a finite label. Drop such rows first (mlContext.Data.FilterRowsByMissingValues).");
            }

            return v;
        };

        private static Func<TOut> Getter<TIn, TOut>(DataViewRowCursor cursor, DataViewSchema.Column column, Func<TIn, TOut> convert)
        {
            var getter = cursor.GetGetter<TIn>(column);
            TIn value = default!;
            return () =>
            {
                getter(ref value);
                return convert(value);
            };
        }

        public void Dispose() => _cursor.Dispose();

    }

    /// <summary>The rows held for shuffling: slots 0..Filled−1 of the arrays.</summary>
    private sealed class ShuffleBuffer((float[] Features, float[] Labels) arrays, int featureLength)
    {
        private readonly float[] _features = arrays.Features;
        private readonly float[] _labels = arrays.Labels;
        private readonly int _f = featureLength;

        public int Filled { get; private set; }

        /// <summary>Reads the cursor's current row into the next free slot.</summary>
        public void Append(RowReader reader)
        {
            reader.Read(_features.AsSpan(Filled * _f, _f), out _labels[Filled]);
            Filled++;
        }

        /// <summary>Moves the row in <paramref name="slot"/> to the batch and reads the cursor's current row into its place.</summary>
        public void Replace(int slot, MiniBatch batch, RowReader reader)
        {
            CopyToBatch(slot, batch);
            reader.Read(_features.AsSpan(slot * _f, _f), out _labels[slot]);
        }

        /// <summary>Moves the row in <paramref name="slot"/> to the batch and the last held row into its place.</summary>
        public void Remove(int slot, MiniBatch batch)
        {
            CopyToBatch(slot, batch);
            Filled--;
            if (slot != Filled)
            {
                _features.AsSpan(Filled * _f, _f).CopyTo(_features.AsSpan(slot * _f, _f));
                _labels[slot] = _labels[Filled];
            }
        }

        private void CopyToBatch(int slot, MiniBatch batch)
        {
            _features.AsSpan(slot * _f, _f).CopyTo(batch.Features.AsSpan(batch.Count * _f, _f));
            batch.SetLabel(batch.Count, _labels[slot]);
        }
    }
}
