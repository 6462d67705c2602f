using Bn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet;

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
        return binding.ColumnsToRead(inputs, probabilities, embedding);
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
        private readonly FeatureVectorReader? _reader;
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
                _reader = FeatureVectorReader.Create(input, input.Schema[b.FeatureColumn.Index], b.Scorer.FeatureLength, dataName: null);
            }

            _features = new float[b.Scorer.FeatureLength];
            _probs = probabilities ? new float[b.Scorer.ScoreWidth] : null;
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
