using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet;

/// <summary>
/// The columns of each task, in ML.NET's conventions: the label a task trains on (multiclass: a key; binary: Boolean;
/// regression: Single) and the columns its transformer adds, in this order after the input's:
/// <list type="bullet">
/// <item><description>multiclass: Score (vector of Single, the class probabilities, with SlotNames), PredictedLabel (the label's key type with its KeyValues);</description></item>
/// <item><description>binary: Score (Single, the raw logit), Probability (Single, its sigmoid), PredictedLabel (Boolean, Score &gt; 0);</description></item>
/// <item><description>regression: Score (Single, in the label's units);</description></item>
/// </list>
/// then the optional embedding. Scores carry ML.NET's ScoreColumnKind and ScoreValueKind annotations.
/// </summary>
internal static class TaskSchema
{
    internal const string SlotNamesAnnotation = "SlotNames";
    internal const string KeyValuesAnnotation = "KeyValues";
    internal const string ScoreColumnKindAnnotation = "ScoreColumnKind";
    internal const string ScoreValueKindAnnotation = "ScoreValueKind";
    internal const string IsNormalizedAnnotation = "IsNormalized";

    /// <summary>What a task's label column must be, and how to get it, for messages.</summary>
    public static string ExpectedLabel(NetworkTask task, string label) => task switch
    {
        NetworkTask.BinaryClassification => $"Boolean (convert it first, for example mlContext.Transforms.Conversion.ConvertType(\"{label}\", outputKind: DataKind.Boolean), or with an expression)",
        NetworkTask.Regression => $"Single (convert it first with mlContext.Transforms.Conversion.ConvertType(\"{label}\", outputKind: DataKind.Single))",
        _ => $"a key type (convert the label with mlContext.Transforms.Conversion.MapValueToKey(\"{label}\"))",
    };

    /// <summary>Whether a concrete label column fits the task (a key's class count is checked separately).</summary>
    public static bool LabelFits(DataViewType type, NetworkTask task) => task switch
    {
        NetworkTask.BinaryClassification => type is BooleanDataViewType,
        NetworkTask.Regression => type == NumberDataViewType.Single,
        _ => type is KeyDataViewType,
    };

    /// <summary>Whether an estimator-side label column fits the task.</summary>
    public static bool LabelFits(SchemaShape.Column c, NetworkTask task) => c.Kind == SchemaShape.Column.VectorKind.Scalar && task switch
    {
        NetworkTask.BinaryClassification => c.ItemType is BooleanDataViewType,
        NetworkTask.Regression => c.ItemType == NumberDataViewType.Single && !c.IsKey,
        _ => c.IsKey,
    };

    /// <summary>The output columns' offsets after the input's columns: Score, Probability (or −1), PredictedLabel (or −1), the embedding (or −1).</summary>
    public static (int Score, int Probability, int Predicted, int Embedding) Offsets(ColumnSettings s)
    {
        var (probability, predicted, next) = s.Task switch
        {
            NetworkTask.BinaryClassification => (1, 2, 3),
            NetworkTask.Regression => (-1, -1, 1),
            _ => (-1, 1, 2),
        };
        return (0, probability, predicted, s.EmbeddingColumnName is null ? -1 : next);
    }

    /// <summary>Adds the task's output columns (and the embedding) to a schema under construction.</summary>
    public static void AddOutputs(DataViewSchema.Builder b, ColumnSettings s, ClassLabels labels, int embeddingSize)
    {
        string kind = ScoreKind(s.Task);
        if (s.Task == NetworkTask.MulticlassClassification)
        {
            var score = Annotations(kind, "Score", normalized: false);
            if (labels.HasValues)
            {
                var names = labels.Names.Select(n => n.AsMemory()).ToArray();
                score.Add(SlotNamesAnnotation, new VectorDataViewType(TextDataViewType.Instance, names.Length),
                    (ref VBuffer<ReadOnlyMemory<char>> v) => new VBuffer<ReadOnlyMemory<char>>(names.Length, names).CopyTo(ref v));
            }

            b.AddColumn(s.ScoreColumnName, new VectorDataViewType(NumberDataViewType.Single, labels.Count), score.ToAnnotations());
            var predicted = new DataViewSchema.Annotations.Builder();
            labels.AddKeyValues(predicted);
            b.AddColumn(s.PredictedLabelColumnName, new KeyDataViewType(typeof(uint), labels.Count), predicted.ToAnnotations());
        }
        else
        {
            b.AddColumn(s.ScoreColumnName, NumberDataViewType.Single, Annotations(kind, "Score", normalized: false).ToAnnotations());
            if (s.Task == NetworkTask.BinaryClassification)
            {
                b.AddColumn(s.ProbabilityColumnName, NumberDataViewType.Single, Annotations(kind, "Probability", normalized: true).ToAnnotations());
                b.AddColumn(s.PredictedLabelColumnName, BooleanDataViewType.Instance);
            }
        }

        if (s.EmbeddingColumnName is not null)
            b.AddColumn(s.EmbeddingColumnName, new VectorDataViewType(NumberDataViewType.Single, embeddingSize));
    }

    /// <summary>Adds the task's output columns to an estimator's output shape (<paramref name="keyValues"/>: the label's KeyValues, multiclass).</summary>
    public static void AddOutputShapes(Dictionary<string, SchemaShape.Column> columns, ColumnSettings s, SchemaShape.Column? keyValues)
    {
        var scoreAnnotations = new List<SchemaShape.Column> { Text(ScoreColumnKindAnnotation), Text(ScoreValueKindAnnotation) };
        if (s.Task == NetworkTask.MulticlassClassification)
        {
            if (keyValues is not null)
                scoreAnnotations.Add(MLNetInternals.NewSchemaShapeColumn(SlotNamesAnnotation, SchemaShape.Column.VectorKind.Vector, TextDataViewType.Instance, false));
            columns[s.ScoreColumnName] = Column(s.ScoreColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, new SchemaShape(scoreAnnotations));
            columns[s.PredictedLabelColumnName] = MLNetInternals.NewSchemaShapeColumn(s.PredictedLabelColumnName, SchemaShape.Column.VectorKind.Scalar,
                NumberDataViewType.UInt32, true, keyValues is { } kv ? new SchemaShape([kv]) : null);
        }
        else
        {
            columns[s.ScoreColumnName] = Column(s.ScoreColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single, new SchemaShape(scoreAnnotations));
            if (s.Task == NetworkTask.BinaryClassification)
            {
                columns[s.ProbabilityColumnName] = Column(s.ProbabilityColumnName, SchemaShape.Column.VectorKind.Scalar, NumberDataViewType.Single,
                    new SchemaShape([.. scoreAnnotations, MLNetInternals.NewSchemaShapeColumn(IsNormalizedAnnotation, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false)]));
                columns[s.PredictedLabelColumnName] = Column(s.PredictedLabelColumnName, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, null);
            }
        }

        if (s.EmbeddingColumnName is not null)
            columns[s.EmbeddingColumnName] = Column(s.EmbeddingColumnName, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, null);
    }

    private static string ScoreKind(NetworkTask task) => task switch
    {
        NetworkTask.BinaryClassification => "BinaryClassification",
        NetworkTask.Regression => "Regression",
        _ => "MulticlassClassification",
    };

    private static DataViewSchema.Annotations.Builder Annotations(string kind, string valueKind, bool normalized)
    {
        var a = new DataViewSchema.Annotations.Builder();
        a.Add(ScoreColumnKindAnnotation, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = kind.AsMemory());
        a.Add(ScoreValueKindAnnotation, TextDataViewType.Instance, (ref ReadOnlyMemory<char> v) => v = valueKind.AsMemory());
        if (normalized)
            a.Add(IsNormalizedAnnotation, BooleanDataViewType.Instance, (ref bool v) => v = true);
        return a;
    }

    private static SchemaShape.Column Text(string name) =>
        MLNetInternals.NewSchemaShapeColumn(name, SchemaShape.Column.VectorKind.Scalar, TextDataViewType.Instance, false);

    private static SchemaShape.Column Column(string name, SchemaShape.Column.VectorKind kind, DataViewType type, SchemaShape? annotations) =>
        MLNetInternals.NewSchemaShapeColumn(name, kind, type, false, annotations);
}
