using Bn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet;

/// <summary>
/// The cursor of a scoring pass, over one cursor of the input. When scores or embeddings are requested it reads ahead up to
/// the inference batch size (the features, the row ids and the requested pass-through columns, kept in
/// <see cref="BufferedColumn"/>s), scores the batch in one forward pass and serves the rows in order; so every upstream
/// column is computed once per row. Otherwise it passes the input cursor's rows through.
/// </summary>
internal sealed class ScoringCursor : DataViewRowCursor
{
    private readonly ScoringBinding _b;
    private readonly DataViewRowCursor _input;
    private readonly bool[] _active;
    private readonly bool _scoring;
    private readonly FeatureVectorReader? _reader;
    private readonly ValueGetter<DataViewRowId>? _inputId;
    private readonly Dictionary<int, BufferedColumn> _buffered = new();
    private readonly float[] _features;
    private readonly float[]? _probs;
    private readonly float[]? _embed;
    private readonly DataViewRowId[] _ids;
    private int _count;
    private int _index = -1;
    private long _position = -1;
    private bool _done;

    /// <param name="binding">The shared scoring pieces.</param>
    /// <param name="input">One cursor of the input with the requested input columns and, when scoring, the feature column active.</param>
    /// <param name="inputs">The requested pass-through input columns.</param>
    /// <param name="active">Active output columns, by index.</param>
    /// <param name="probabilities">Whether Score or PredictedLabel is requested.</param>
    /// <param name="embedding">Whether the embedding is requested.</param>
    public ScoringCursor(ScoringBinding binding, DataViewRowCursor input, IReadOnlyList<DataViewSchema.Column> inputs, bool[] active, bool probabilities, bool embedding)
    {
        _b = binding;
        _input = input;
        _active = active;
        _scoring = probabilities || embedding;
        int n = _scoring ? binding.BatchSize : 0;
        _ids = new DataViewRowId[n];
        _features = new float[n * binding.Scorer.FeatureLength];
        _probs = probabilities ? new float[n * binding.Scorer.ScoreWidth] : null;
        _embed = embedding ? new float[n * binding.Scorer.EmbeddingSize] : null;
        if (_scoring)
        {
            _reader = FeatureVectorReader.Create(input, input.Schema[binding.FeatureColumn.Index], binding.Scorer.FeatureLength, dataName: null);
            _inputId = input.GetIdGetter();
            foreach (DataViewSchema.Column c in inputs)
            {
                _buffered[c.Index] = BufferedColumn.Create(input, input.Schema[c.Index], n);
            }
        }
    }

    public override DataViewSchema Schema => _b.OutputSchema;

    public override long Position => _position;

    public override long Batch => 0;

    public override ValueGetter<DataViewRowId> GetIdGetter() =>
        !_scoring ? _input.GetIdGetter() : (ref DataViewRowId id) => id = _ids[CurrentSlot()];

    public override bool IsColumnActive(DataViewSchema.Column column) =>
        column.Index >= 0 && column.Index < _active.Length && _active[column.Index];

    public override bool MoveNext()
    {
        if (_done)
            return false;
        if (_scoring ? _index + 1 >= _count && !Fill() : !_input.MoveNext())
        {
            _done = true;
            return false;
        }

        _index++;
        _position++;
        return true;
    }

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (!IsColumnActive(column))
            throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
        int idx = column.Index;
        if (idx < _b.InputSchema.Count)
            return _scoring ? _buffered[idx].Getter<TValue>(CurrentSlot) : _input.GetGetter<TValue>(_input.Schema[idx]);
        return _b.OutputGetter<TValue>(column, CurrentSlot, _probs, _embed);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _input.Dispose();
        base.Dispose(disposing);
    }

    /// <summary>Reads up to a batch of rows ahead and scores them; false at the end of the input.</summary>
    private bool Fill()
    {
        int len = _b.Scorer.FeatureLength;
        int n = 0;
        while (n < _ids.Length && _input.MoveNext())
        {
            _reader!.Read(_features.AsSpan(n * len, len));
            _inputId!(ref _ids[n]);
            foreach (BufferedColumn column in _buffered.Values)
                column.Store(n);
            n++;
        }

        _count = n;
        _index = -1;
        if (n == 0)
            return false;
        _b.Scorer.Score(_features, n, _probs, _embed);
        return true;
    }

    /// <summary>The current row's slot in the batch buffers.</summary>
    private int CurrentSlot()
    {
        if (_position < 0 || _done)
            throw new InvalidOperationException("The cursor is not on a row.");
        return _index;
    }
}
