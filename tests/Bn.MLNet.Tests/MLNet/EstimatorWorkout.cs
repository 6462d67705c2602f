using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>
/// A reusable checklist for an ML.NET estimator and the transformer it fitted, in the spirit of ML.NET's own estimator
/// workout (<c>TestEstimatorCore</c>): the schema that <c>GetOutputSchema</c> promises is the one <c>Transform</c>
/// delivers (names, types, key counts, annotations with slot names and key values); invalid inputs fail; save → load
/// gives identical values; the transformer works on data with an extra column and the columns in another order.
/// It reuses a model the test already trained (the workout itself never trains), so it adds little time.
/// </summary>
internal static class EstimatorWorkout
{
    /// <summary>Runs every check.</summary>
    /// <param name="ml">The context that trained <paramref name="model"/>.</param>
    /// <param name="estimator">The estimator (or chain) that produced <paramref name="model"/> from <paramref name="fitInput"/>.</param>
    /// <param name="model">The fitted transformer.</param>
    /// <param name="fitInput">The data the estimator was fitted on.</param>
    /// <param name="scoreInput">Data to score (a few rows keep the workout fast).</param>
    /// <param name="requiredColumn">An input column the estimator needs: data without it must be refused.</param>
    /// <param name="outputColumns">The columns the estimator adds, whose values are compared.</param>
    public static void Run(MLContext ml, IEstimator<ITransformer> estimator, ITransformer model, IDataView fitInput, IDataView scoreInput,
        string requiredColumn, params string[] outputColumns)
    {
        IDataView scored = model.Transform(scoreInput);
        PromiseIsDelivered(estimator.GetOutputSchema(MLNetInternals.ToSchemaShape(fitInput.Schema)), scored.Schema, outputColumns);
        SameSchema(model.GetOutputSchema(scoreInput.Schema), scored.Schema);
        InvalidInputFails(ml, estimator, model, scoreInput, requiredColumn);
        var expected = outputColumns.ToDictionary(c => c, c => Values(scored, c));
        SaveLoadGivesIdenticalValues(model, fitInput.Schema, scoreInput, expected);
        ExtraAndReorderedColumnsWork(ml, model, scoreInput, expected);
    }

    /// <summary>Every promised column is delivered with the same kind, item type, key-ness and annotations, and nothing else is.</summary>
    public static void PromiseIsDelivered(SchemaShape promised, DataViewSchema delivered, IReadOnlyCollection<string> outputColumns)
    {
        var actual = MLNetInternals.ToSchemaShape(delivered);
        Assert.Equal(promised.Select(c => c.Name).OrderBy(n => n, StringComparer.Ordinal), actual.Select(c => c.Name).OrderBy(n => n, StringComparer.Ordinal));
        foreach (var p in promised)
        {
            var a = actual.Single(c => c.Name == p.Name);
            string what = $"column '{p.Name}'";
            Assert.True(p.Kind == a.Kind, $"{what}: promised {p.Kind}, delivered {a.Kind}");
            Assert.True(p.ItemType.Equals(a.ItemType), $"{what}: promised item type {p.ItemType}, delivered {a.ItemType}");
            Assert.True(p.IsKey == a.IsKey, $"{what}: promised key {p.IsKey}, delivered key {a.IsKey}");
            var promisedAnnotations = p.Annotations.Select(x => x.Name).ToHashSet();
            var deliveredAnnotations = a.Annotations.Select(x => x.Name).ToHashSet();
            Assert.True(promisedAnnotations.IsSubsetOf(deliveredAnnotations),
                $"{what}: promised annotations {string.Join(", ", promisedAnnotations)}, delivered {string.Join(", ", deliveredAnnotations)}");
            if (outputColumns.Contains(p.Name))
                Assert.True(promisedAnnotations.SetEquals(deliveredAnnotations), $"{what}: promised annotations {string.Join(", ", promisedAnnotations)}, delivered {string.Join(", ", deliveredAnnotations)}");
            foreach (var pa in p.Annotations)
            {
                var aa = a.Annotations.Single(c => c.Name == pa.Name);
                Assert.True(pa.Kind == aa.Kind && pa.ItemType.Equals(aa.ItemType), $"{what}: annotation {pa.Name} promised {pa.Kind} of {pa.ItemType}, delivered {aa.Kind} of {aa.ItemType}");
            }
        }
    }

    /// <summary>Same columns in the same order with equal types (vector sizes and key counts included) and equal text annotations.</summary>
    public static void SameSchema(DataViewSchema expected, DataViewSchema actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            var e = expected[i];
            var a = actual[i];
            Assert.Equal(e.Name, a.Name);
            Assert.True(e.Type.Equals(a.Type), $"column '{e.Name}': {e.Type} vs {a.Type}");
            Assert.Equal(e.IsHidden, a.IsHidden);
            Assert.Equal(e.Annotations.Schema.Select(c => c.Name), a.Annotations.Schema.Select(c => c.Name));
            foreach (var annotation in e.Annotations.Schema)
            {
                var other = a.Annotations.Schema[annotation.Name];
                Assert.True(annotation.Type.Equals(other.Type), $"column '{e.Name}', annotation {annotation.Name}: {annotation.Type} vs {other.Type}");
                Assert.Equal(AnnotationText(e.Annotations, annotation), AnnotationText(a.Annotations, other));
            }
        }
    }

    private static void InvalidInputFails(MLContext ml, IEstimator<ITransformer> estimator, ITransformer model, IDataView input, string requiredColumn)
    {
        var without = ml.Transforms.DropColumns(requiredColumn).Fit(input).Transform(input);
        var e = Assert.ThrowsAny<ArgumentException>(() => estimator.GetOutputSchema(MLNetInternals.ToSchemaShape(without.Schema)));
        Assert.Contains(requiredColumn, e.Message);
        Assert.ThrowsAny<ArgumentException>(() => model.GetOutputSchema(without.Schema));
        Assert.ThrowsAny<ArgumentException>(() => model.Transform(without));
    }

    private static void SaveLoadGivesIdenticalValues(ITransformer model, DataViewSchema inputSchema, IDataView input, Dictionary<string, List<object?>> expected)
    {
        using var stream = new MemoryStream();
        new MLContext(seed: 1).Model.Save(model, inputSchema, stream);
        stream.Position = 0;
        var fresh = new MLContext(seed: 2);
        fresh.ComponentCatalog.RegisterBatchNormCnn();
        var loaded = fresh.Model.Load(stream, out var loadedSchema);
        Assert.Equal(inputSchema.Select(c => c.Name), loadedSchema.Select(c => c.Name));
        try
        {
            var scored = loaded.Transform(input);
            SameSchema(model.GetOutputSchema(input.Schema), scored.Schema);
            foreach (var (column, values) in expected)
                Assert.Equal(values, Values(scored, column));
        }
        finally
        {
            (loaded as IDisposable)?.Dispose();
        }
    }

    private static void ExtraAndReorderedColumnsWork(MLContext ml, ITransformer model, IDataView input, Dictionary<string, List<object?>> expected)
    {
        string first = input.Schema.First(c => !c.IsHidden).Name;
        var withExtra = ml.Transforms.CopyColumns("WorkoutExtraColumn", first).Fit(input).Transform(input);
        var names = withExtra.Schema.Where(c => !c.IsHidden).Select(c => c.Name).Reverse().ToArray();
        var reordered = ml.Transforms.SelectColumns(names).Fit(withExtra).Transform(withExtra);
        Assert.Equal(names, reordered.Schema.Select(c => c.Name));
        var scored = model.Transform(reordered);
        Assert.NotNull(scored.Schema.GetColumnOrNull("WorkoutExtraColumn"));
        foreach (var (column, values) in expected)
            Assert.Equal(values, Values(scored, column));
    }

    /// <summary>A column's values as comparable objects (vectors become arrays, text becomes strings).</summary>
    public static List<object?> Values(IDataView data, string column)
    {
        var type = data.Schema[column].Type;
        return type switch
        {
            VectorDataViewType { ItemType: var t } when t == NumberDataViewType.Single => data.GetColumn<float[]>(column).Select(v => (object?)v).ToList(),
            KeyDataViewType { RawType: var r } when r == typeof(uint) => data.GetColumn<uint>(column).Select(v => (object?)v).ToList(),
            TextDataViewType => data.GetColumn<string>(column).Select(v => (object?)v).ToList(),
            NumberDataViewType n when n == NumberDataViewType.Single => data.GetColumn<float>(column).Select(v => (object?)v).ToList(),
            NumberDataViewType n when n == NumberDataViewType.UInt32 => data.GetColumn<uint>(column).Select(v => (object?)v).ToList(),
            BooleanDataViewType => data.GetColumn<bool>(column).Select(v => (object?)v).ToList(),
            _ => throw new NotSupportedException($"Column '{column}' has type {type}, which the workout cannot compare yet."),
        };
    }

    private static string AnnotationText(DataViewSchema.Annotations annotations, DataViewSchema.Column column)
    {
        if (column.Type is TextDataViewType)
        {
            ReadOnlyMemory<char> text = default;
            annotations.GetValue(column.Name, ref text);
            return text.ToString();
        }

        if (column.Type is VectorDataViewType { ItemType: TextDataViewType })
        {
            VBuffer<ReadOnlyMemory<char>> texts = default;
            annotations.GetValue(column.Name, ref texts);
            return string.Join("|", texts.DenseValues());
        }

        if (column.Type is VectorDataViewType { ItemType: var item } && item == NumberDataViewType.Single)
        {
            VBuffer<float> numbers = default;
            annotations.GetValue(column.Name, ref numbers);
            return string.Join("|", numbers.DenseValues());
        }

        return $"({column.Type})";
    }
}
