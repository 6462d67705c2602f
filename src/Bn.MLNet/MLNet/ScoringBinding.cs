using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet;

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
        var (score, probability, predicted, embedding) = TaskSchema.Offsets(settings);
        ScoreIndex = input.Count + score;
        ProbabilityIndex = probability < 0 ? -1 : input.Count + probability;
        PredictedIndex = predicted < 0 ? -1 : input.Count + predicted;
        EmbeddingIndex = embedding < 0 ? -1 : input.Count + embedding;
    }

    public DataViewSchema InputSchema { get; }

    public DataViewSchema OutputSchema { get; }

    public ColumnSettings Settings { get; }

    public NetworkScorer Scorer { get; }

    public int BatchSize { get; }

    public DataViewSchema.Column FeatureColumn { get; }

    public int ScoreIndex { get; }

    public int ProbabilityIndex { get; }

    public int PredictedIndex { get; }

    public int EmbeddingIndex { get; }

    /// <summary>
    /// The input columns one pass reads: the requested pass-through <paramref name="inputs"/>, plus the feature column
    /// when an output computed from it is requested. Returns a new list.
    /// </summary>
    public List<DataViewSchema.Column> ColumnsToRead(IReadOnlyList<DataViewSchema.Column> inputs, bool scores, bool embedding)
    {
        var read = new List<DataViewSchema.Column>(inputs);
        if ((scores || embedding) && !read.Any(c => c.Index == FeatureColumn.Index))
            read.Add(FeatureColumn);
        return read;
    }

    /// <summary>Splits requested output columns into pass-through input columns and the computed outputs (the scores, the embedding).</summary>
    public (List<DataViewSchema.Column> Inputs, bool Scores, bool Embedding, bool[] Active) Split(IEnumerable<DataViewSchema.Column> columns)
    {
        var active = new bool[OutputSchema.Count];
        var inputs = new List<DataViewSchema.Column>();
        bool scores = false, embedding = false;
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
                scores = true;
        }

        return (inputs, scores, embedding, active);
    }

    /// <summary>
    /// The getter of one output column (Score, Probability, PredictedLabel or Embedding) over rows scored into flat
    /// buffers: <paramref name="currentRow"/> makes sure the current row is scored and returns its index in the buffers.
    /// </summary>
    public ValueGetter<TValue> OutputGetter<TValue>(DataViewSchema.Column column, Func<int> currentRow, float[]? scores, float[]? embedding)
    {
        var scorer = Scorer;
        int width = scorer.ScoreWidth;
        if (column.Index == EmbeddingIndex)
        {
            CheckType<VBuffer<float>, TValue>(column);
            ValueGetter<VBuffer<float>> e = (ref VBuffer<float> dst) => CopyRow(embedding!, currentRow(), scorer.EmbeddingSize, ref dst);
            return (ValueGetter<TValue>)(object)e;
        }

        if (column.Index == ScoreIndex && scorer.Task == Networks.NetworkTask.MulticlassClassification)
        {
            CheckType<VBuffer<float>, TValue>(column);
            ValueGetter<VBuffer<float>> g = (ref VBuffer<float> dst) => CopyRow(scores!, currentRow(), width, ref dst);
            return (ValueGetter<TValue>)(object)g;
        }

        if (column.Index == ScoreIndex || column.Index == ProbabilityIndex)
        {
            CheckType<float, TValue>(column);
            int offset = column.Index == ScoreIndex ? 0 : 1;
            ValueGetter<float> g = (ref float dst) => dst = scores![(currentRow() * width) + offset];
            return (ValueGetter<TValue>)(object)g;
        }

        if (scorer.Task == Networks.NetworkTask.BinaryClassification)
        {
            CheckType<bool, TValue>(column);
            ValueGetter<bool> g = (ref bool dst) => dst = scorer.PredictedTrue(scores!, currentRow());
            return (ValueGetter<TValue>)(object)g;
        }

        CheckType<uint, TValue>(column);
        ValueGetter<uint> key = (ref uint dst) => dst = scorer.PredictedKey(scores!, currentRow());
        return (ValueGetter<TValue>)(object)key;
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
