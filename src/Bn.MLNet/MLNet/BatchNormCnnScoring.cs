using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Bn.MLNet;

/// <summary>
/// Runs the eval-mode network on batches of rows under no_grad and copies softmax probabilities (and optionally the
/// embedding) into managed buffers; every tensor is disposed before returning. Safe to call from several threads:
/// the network is only read (eval mode is set once, before any call), and libtorch's grad mode and TorchSharp's
/// dispose scopes are per thread.
/// </summary>
internal sealed class NetworkScorer
{
    private readonly BnCnn _network;
    private volatile bool _disposed;

    public NetworkScorer(BnCnn network, int featureLength, int classCount)
    {
        _network = network;
        FeatureLength = featureLength;
        ClassCount = classCount;
        EmbeddingSize = network.EmbeddingSize;
    }

    public int FeatureLength { get; }

    public int ClassCount { get; }

    public int EmbeddingSize { get; }

    public void MarkDisposed() => _disposed = true;

    /// <summary>Scores <paramref name="rows"/> rows of <paramref name="features"/> (row-major).</summary>
    public void Score(float[] features, int rows, float[]? probabilities, float[]? embedding)
    {
        ObjectDisposedException.ThrowIf(_disposed, typeof(BatchNormCnnTransformer));
        if (rows <= 0)
            return;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        Tensor x = torch.tensor(features.AsMemory(0, rows * FeatureLength), [rows, (long)FeatureLength]);
        if (probabilities is not null)
        {
            Tensor p = torch.nn.functional.softmax(_network.forward(x), 1);
            p.data<float>().CopyTo(probabilities.AsSpan(0, rows * ClassCount), 0, 0);
        }

        if (embedding is not null)
        {
            Tensor e = _network.Embed(x).contiguous();
            e.data<float>().CopyTo(embedding.AsSpan(0, rows * EmbeddingSize), 0, 0);
        }
    }

    /// <summary>
    /// Index of the largest probability of row <paramref name="row"/>, as a 1-based key; the missing key 0 when the row's
    /// scores are NaN (a NaN or infinite input value), as ML.NET's own scorers do.
    /// </summary>
    public uint PredictedKey(float[] probabilities, int row)
    {
        var span = probabilities.AsSpan(row * ClassCount, ClassCount);
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
}

/// <summary>Reads one row's features (Single, Byte or Double vector, dense or sparse) as floats.</summary>
internal abstract class FeatureReader
{
    public static FeatureReader Create(DataViewRow row, DataViewSchema.Column column, int length)
    {
        var item = ((VectorDataViewType)column.Type).ItemType;
        if (item == NumberDataViewType.Single)
            return new Typed<float>(row, column, length, v => v);
        if (item == NumberDataViewType.Byte)
            return new Typed<byte>(row, column, length, v => v);
        if (item == NumberDataViewType.Double)
            return new Typed<double>(row, column, length, v => (float)v);
        throw new ArgumentException($"Feature column '{column.Name}' has unsupported item type {item}.");
    }

    public abstract void Read(Span<float> destination);

    private sealed class Typed<T>(DataViewRow row, DataViewSchema.Column column, int length, Func<T, float> convert) : FeatureReader
    {
        private readonly ValueGetter<VBuffer<T>> _getter = row.GetGetter<VBuffer<T>>(column);
        private VBuffer<T> _buffer;

        public override void Read(Span<float> destination)
        {
            _getter(ref _buffer);
            if (_buffer.Length != length)
            {
                throw new InvalidOperationException(
                    $"Feature column '{column.Name}' has a row of length {_buffer.Length}; expected {length}.");
            }

            var values = _buffer.GetValues();
            if (_buffer.IsDense)
            {
                if (typeof(T) == typeof(float))
                {
                    ref T first = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(values);
                    System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpan(
                        ref System.Runtime.CompilerServices.Unsafe.As<T, float>(ref first), values.Length).CopyTo(destination);
                }
                else
                {
                    for (int i = 0; i < length; i++)
                        destination[i] = convert(values[i]);
                }
            }
            else
            {
                destination[..length].Clear();
                var indices = _buffer.GetIndices();
                for (int i = 0; i < indices.Length; i++)
                    destination[indices[i]] = convert(values[i]);
            }
        }
    }
}

/// <summary>Shared pieces of the lazily scored view, its cursors and the row mapper.</summary>
internal sealed class ScoringBinding
{
    public ScoringBinding(DataViewSchema input, ColumnSettings settings, ClassLabels labels, NetworkScorer scorer, int inferenceBatchSize)
    {
        InputSchema = input;
        Settings = settings;
        Scorer = scorer;
        BatchSize = inferenceBatchSize;
        FeatureColumn = BatchNormCnnSchema.CheckFeatureColumn(input, settings);
        OutputSchema = BatchNormCnnSchema.BuildOutputSchema(input, settings, labels, scorer.EmbeddingSize);
        ScoreIndex = input.Count;
        PredictedIndex = input.Count + 1;
        EmbeddingIndex = settings.EmbeddingColumnName is null ? -1 : input.Count + 2;
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public ColumnSettings Settings { get; }

    public NetworkScorer Scorer { get; }

    public int BatchSize { get; }

    public DataViewSchema.Column FeatureColumn { get; }

    public int ScoreIndex { get; }

    public int PredictedIndex { get; }

    public int EmbeddingIndex { get; }

    /// <summary>Splits requested output columns into pass-through input columns and the computed outputs.</summary>
    public (List<DataViewSchema.Column> Inputs, bool Probabilities, bool Embedding, bool[] Active) Split(IEnumerable<DataViewSchema.Column> columns)
    {
        var active = new bool[OutputSchema.Count];
        var inputs = new List<DataViewSchema.Column>();
        bool probabilities = false, embedding = false;
        foreach (var c in columns)
        {
            if (c.Index < 0 || c.Index >= OutputSchema.Count || OutputSchema[c.Index].Name != c.Name)
                throw new ArgumentException($"Column '{c.Name}' does not belong to this schema.", nameof(columns));
            if (active[c.Index])
                continue;
            active[c.Index] = true;
            if (c.Index < InputSchema.Count)
                inputs.Add(InputSchema[c.Index]);
            else if (c.Index == EmbeddingIndex)
                embedding = true;
            else
                probabilities = true;
        }

        return (inputs, probabilities, embedding, active);
    }

    /// <summary>
    /// The getter of one output column (Score, PredictedLabel or Embedding) over rows scored into flat buffers:
    /// <paramref name="currentRow"/> makes sure the current row is scored and returns its index in the buffers.
    /// </summary>
    public ValueGetter<TValue> OutputGetter<TValue>(DataViewSchema.Column column, Func<int> currentRow, float[]? probabilities, float[]? embedding)
    {
        var scorer = Scorer;
        if (column.Index == ScoreIndex)
        {
            CheckType<VBuffer<float>, TValue>(column);
            ValueGetter<VBuffer<float>> g = (ref VBuffer<float> dst) => CopyRow(probabilities!, currentRow(), scorer.ClassCount, ref dst);
            return (ValueGetter<TValue>)(object)g;
        }

        if (column.Index == PredictedIndex)
        {
            CheckType<uint, TValue>(column);
            ValueGetter<uint> g = (ref uint dst) => dst = scorer.PredictedKey(probabilities!, currentRow());
            return (ValueGetter<TValue>)(object)g;
        }

        CheckType<VBuffer<float>, TValue>(column);
        ValueGetter<VBuffer<float>> e = (ref VBuffer<float> dst) => CopyRow(embedding!, currentRow(), scorer.EmbeddingSize, ref dst);
        return (ValueGetter<TValue>)(object)e;
    }

    private static void CopyRow(float[] source, int row, int length, ref VBuffer<float> dst)
    {
        var editor = VBufferEditor.Create(ref dst, length);
        source.AsSpan(row * length, length).CopyTo(editor.Values);
        dst = editor.Commit();
    }

    public static void CheckType<TExpected, TAsked>(DataViewSchema.Column column)
    {
        if (typeof(TExpected) != typeof(TAsked))
        {
            throw new InvalidOperationException(
                $"Column '{column.Name}' has type {column.Type} ({typeof(TExpected).Name}); a getter of {typeof(TAsked).Name} was requested.");
        }
    }
}

/// <summary>The lazily scored output of <see cref="BatchNormCnnTransformer.Transform"/>.</summary>
internal sealed class ScoringDataView(IDataView input, ScoringBinding binding) : IDataView
{
    public bool CanShuffle => false;

    public DataViewSchema Schema => binding.OutputSchema;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var (inputs, probabilities, embedding, active) = binding.Split(columnsNeeded);
        // Random order is not supported (CanShuffle is false): the scored rows follow the input's own order.
        if (!probabilities && !embedding)
            return new ScoringCursor(binding, input.GetRowCursor(inputs), lead: null, active, false, false);
        var lead = input.GetRowCursor([input.Schema[binding.FeatureColumn.Index]]);
        if (inputs.Count == 0)
            return new ScoringCursor(binding, follow: null, lead, active, probabilities, embedding);
        DataViewRowCursor follow;
        try
        {
            follow = input.GetRowCursor(inputs);
        }
        catch
        {
            lead.Dispose();
            throw;
        }

        return new ScoringCursor(binding, follow, lead, active, probabilities, embedding);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];
}

/// <summary>
/// A cursor that reads ahead up to the inference batch size on a "lead" cursor of the input (feature column only),
/// scores the batch in one forward pass, and serves the rows in order while a "follow" cursor of the input provides the
/// pass-through columns of the same row (row ids are compared, so an input whose cursors disagree is reported). When no
/// input column is requested there is no follow cursor; when no score is requested there is no lead cursor.
/// </summary>
internal sealed class ScoringCursor : DataViewRowCursor
{
    private readonly ScoringBinding _b;
    private readonly DataViewRowCursor? _follow;
    private readonly DataViewRowCursor? _lead;
    private readonly bool[] _active;
    private readonly bool _probabilities;
    private readonly bool _embedding;
    private readonly FeatureReader? _reader;
    private readonly ValueGetter<DataViewRowId>? _leadId;
    private readonly ValueGetter<DataViewRowId>? _followId;
    private readonly float[] _features;
    private readonly float[]? _probs;
    private readonly float[]? _embed;
    private readonly DataViewRowId[] _ids;
    private int _count;
    private int _index = -1;
    private long _position = -1;
    private bool _done;

    public ScoringCursor(ScoringBinding binding, DataViewRowCursor? follow, DataViewRowCursor? lead, bool[] active, bool probabilities, bool embedding)
    {
        _b = binding;
        _follow = follow;
        _lead = lead;
        _active = active;
        _probabilities = probabilities;
        _embedding = embedding;
        _followId = follow?.GetIdGetter();
        int n = binding.BatchSize;
        _ids = new DataViewRowId[n];
        _features = lead is null ? [] : new float[n * binding.Scorer.FeatureLength];
        _probs = probabilities ? new float[n * binding.Scorer.ClassCount] : null;
        _embed = embedding ? new float[n * binding.Scorer.EmbeddingSize] : null;
        if (lead is not null)
        {
            _reader = FeatureReader.Create(lead, lead.Schema[binding.FeatureColumn.Index], binding.Scorer.FeatureLength);
            _leadId = lead.GetIdGetter();
        }
    }

    public override DataViewSchema Schema => _b.OutputSchema;

    public override long Position => _position;

    public override long Batch => 0;

    public override ValueGetter<DataViewRowId> GetIdGetter() =>
        _followId ?? ((ref DataViewRowId id) =>
        {
            EnsureRow();
            id = _ids[_index];
        });

    public override bool IsColumnActive(DataViewSchema.Column column) =>
        column.Index >= 0 && column.Index < _active.Length && _active[column.Index];

    public override bool MoveNext()
    {
        if (_done)
            return false;
        if (_lead is not null)
        {
            if (_index + 1 >= _count && !Fill())
                return Finish();
            _index++;
        }

        if (_follow is not null && !_follow.MoveNext())
        {
            if (_lead is not null)
                throw new InvalidOperationException("The input view returned fewer rows on its second cursor than on the first; BatchNormCnn scoring needs a deterministic input.");
            return Finish();
        }

        if (_lead is not null && _follow is not null)
        {
            DataViewRowId id = default;
            _followId!(ref id);
            if (!id.Equals(_ids[_index]))
                throw new InvalidOperationException("The input view's cursors returned rows in different orders; BatchNormCnn scoring needs a deterministic input.");
        }

        _position++;
        return true;
    }

    private bool Finish()
    {
        _done = true;
        return false;
    }

    private bool Fill()
    {
        int len = _b.Scorer.FeatureLength;
        int n = 0;
        while (n < _ids.Length && _lead!.MoveNext())
        {
            _reader!.Read(_features.AsSpan(n * len, len));
            _leadId!(ref _ids[n]);
            n++;
        }

        _count = n;
        _index = -1;
        if (n == 0)
            return false;
        _b.Scorer.Score(_features, n, _probs, _embed);
        return true;
    }

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (!IsColumnActive(column))
            throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
        int idx = column.Index;
        if (idx < _b.InputSchema.Count)
            return _follow!.GetGetter<TValue>(_follow.Schema[idx]);
        return _b.OutputGetter<TValue>(column, () =>
        {
            EnsureRow();
            return _index;
        }, _probs, _embed);
    }

    private void EnsureRow()
    {
        if (_position < 0 || _done)
            throw new InvalidOperationException("The cursor is not on a row.");
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _follow?.Dispose();
            _lead?.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>
/// The row-to-row mapper behind <c>CreatePredictionEngine</c>: each output row scores its input row alone (a batch of
/// one in eval mode, which equals batched scoring) and caches the result per input position.
/// </summary>
internal sealed class ScoringRowMapper(ScoringBinding binding) : IRowToRowMapper
{
    public DataViewSchema InputSchema => binding.InputSchema;

    public DataViewSchema OutputSchema => binding.OutputSchema;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var (inputs, probabilities, embedding, _) = binding.Split(dependingColumns);
        if ((probabilities || embedding) && !inputs.Any(c => c.Index == binding.FeatureColumn.Index))
            inputs.Add(binding.FeatureColumn);
        return inputs;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ArgumentNullException.ThrowIfNull(input);
        var (_, probabilities, embedding, active) = binding.Split(activeColumns);
        return new Row(binding, input, active, probabilities, embedding);
    }

    private sealed class Row : DataViewRow
    {
        private readonly ScoringBinding _b;
        private readonly DataViewRow _input;
        private readonly bool[] _active;
        private readonly FeatureReader? _reader;
        private readonly float[] _features;
        private readonly float[]? _probs;
        private readonly float[]? _embed;
        private long _scoredPosition = -1;

        public Row(ScoringBinding b, DataViewRow input, bool[] active, bool probabilities, bool embedding)
        {
            _b = b;
            _input = input;
            _active = active;
            if (probabilities || embedding)
            {
                if (!input.IsColumnActive(input.Schema[b.FeatureColumn.Index]))
                    throw new InvalidOperationException($"Feature column '{b.FeatureColumn.Name}' is not active in the input row.");
                _reader = FeatureReader.Create(input, input.Schema[b.FeatureColumn.Index], b.Scorer.FeatureLength);
            }

            _features = new float[b.Scorer.FeatureLength];
            _probs = probabilities ? new float[b.Scorer.ClassCount] : null;
            _embed = embedding ? new float[b.Scorer.EmbeddingSize] : null;
        }

        public override DataViewSchema Schema => _b.OutputSchema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            column.Index >= 0 && column.Index < _active.Length && _active[column.Index];

        private void EnsureScored()
        {
            long position = _input.Position;
            if (position == _scoredPosition)
                return;
            _reader!.Read(_features);
            _b.Scorer.Score(_features, 1, _probs, _embed);
            _scoredPosition = position;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
                throw new InvalidOperationException($"Column '{column.Name}' is not active in this row.");
            int idx = column.Index;
            if (idx < _b.InputSchema.Count)
                return _input.GetGetter<TValue>(_input.Schema[idx]);
            return _b.OutputGetter<TValue>(column, () =>
            {
                EnsureScored();
                return 0;
            }, _probs, _embed);
        }
    }
}
