using Microsoft.ML;

namespace Bn.MLNet;

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
        // One input cursor per pass: the feature column is read with the requested input columns.
        DataViewRowCursor cursor = input.GetRowCursor(binding.ColumnsToRead(inputs, probabilities, embedding));
        try
        {
            return new ScoringCursor(binding, cursor, inputs, active, probabilities, embedding);
        }
        catch
        {
            cursor.Dispose();
            throw;
        }
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];
}
