using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Benchmarks;

/// <summary>What every scoring benchmark does with a scored view: a cursor over the Score column of every row.</summary>
internal static class ScoreColumn
{
    /// <summary>Reads the Score vector of every row of <paramref name="scored"/>; returns the sum of the first values.</summary>
    public static float Sum(IDataView scored)
    {
        DataViewSchema.Column column = scored.Schema["Score"];
        using DataViewRowCursor cursor = scored.GetRowCursor([column]);
        ValueGetter<VBuffer<float>> getter = cursor.GetGetter<VBuffer<float>>(column);
        VBuffer<float> buffer = default;
        float sum = 0;
        while (cursor.MoveNext())
        {
            getter(ref buffer);
            sum += buffer.GetValues()[0];
        }

        return sum;
    }
}
