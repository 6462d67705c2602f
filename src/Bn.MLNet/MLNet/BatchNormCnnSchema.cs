using Bn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet;

/// <summary>
/// Schema validation (the feature and label columns, with messages naming the column, its type and the fix) and the
/// output schema (Score, PredictedLabel, the optional embedding) for the estimator and the transformer.
/// </summary>
internal static class BatchNormCnnSchema
{
    /// <summary>Whether <paramref name="type"/> is an item type we accept for features.</summary>
    internal static bool IsFeatureItemType(DataViewType type) =>
        type == NumberDataViewType.Single || type == NumberDataViewType.Byte || type == NumberDataViewType.Double;

    /// <summary>Validates the feature column of a concrete schema and returns it.</summary>
    /// <exception cref="ArgumentException">Missing, wrong type, variable size or wrong length; the message names the column.</exception>
    internal static DataViewSchema.Column CheckFeatureColumn(DataViewSchema schema, ColumnSettings s, string paramName = "inputSchema")
    {
        var col = schema.GetColumnOrNull(s.FeatureColumnName)
            ?? throw new ArgumentException(
                $"Feature column '{s.FeatureColumnName}' was not found in the input (columns: {ColumnList(schema)}); expected a known-size " +
                $"vector of Single (or Byte or Double) of length {s.ShapeText}.", paramName);
        if (col.Type is not VectorDataViewType vector || !IsFeatureItemType(vector.ItemType))
        {
            throw new ArgumentException(
                $"Feature column '{s.FeatureColumnName}' has type {col.Type}; expected a known-size vector of Single (or Byte or Double) " +
                $"of length {s.ShapeText}.", paramName);
        }

        if (!vector.IsKnownSize)
        {
            throw new ArgumentException(
                $"Feature column '{s.FeatureColumnName}' is a variable-length vector of {vector.ItemType}; expected a known-size vector " +
                $"of length {s.ShapeText} (ImageChannels×ImageHeight×ImageWidth).", paramName);
        }

        if (vector.Size != s.FeatureLength)
        {
            throw new ArgumentException(
                $"Feature column '{s.FeatureColumnName}' is a vector of {vector.ItemType} of length {vector.Size}{DimensionsText(vector)}; expected length " +
                $"{s.ShapeText} (ImageChannels×ImageHeight×ImageWidth). Set the options ImageChannels, ImageHeight and ImageWidth to the " +
                $"column's shape, or make the image pipeline produce {s.ImageChannels}×{s.ImageHeight}×{s.ImageWidth}: " +
                $"ResizeImages(imageWidth: {s.ImageWidth}, imageHeight: {s.ImageHeight}) and ExtractPixels with {s.ImageChannels} colour plane(s) " +
                "(colorsToExtract: Red for one plane of a grey image, the default Rgb for three).", paramName);
        }

        CheckImageDimensions(vector, s, paramName);
        return col;
    }

    /// <summary>
    /// Uses the only layout trace ML.NET leaves in a schema: the vector type's <see cref="VectorDataViewType.Dimensions"/>.
    /// <c>ExtractPixels</c> declares planar output as C×H×W and interleaved output (<c>interleavePixelColors: true</c>)
    /// as H×W×C; it adds no annotation. A three-dimensional column that is not C×H×W is refused (H×W×1 is the same
    /// memory layout as 1×H×W and passes); a column with other dimensions (or none, e.g. the application's own
    /// vectors) is taken as C×H×W, since no layout can be read from it.
    /// </summary>
    private static void CheckImageDimensions(VectorDataViewType vector, ColumnSettings s, string paramName)
    {
        var d = vector.Dimensions;
        if (d.Length != 3 || (d[0] == s.ImageChannels && d[1] == s.ImageHeight && d[2] == s.ImageWidth))
            return;
        if (d[0] == s.ImageHeight && d[1] == s.ImageWidth && d[2] == s.ImageChannels)
        {
            if (s.ImageChannels == 1)
                return;
            throw new ArgumentException(
                $"Feature column '{s.FeatureColumnName}' has dimensions {d[0]}×{d[1]}×{d[2]}, an interleaved H×W×C pixel layout; the network " +
                $"expects planar C×H×W ({s.ShapeText}: all values of one colour, then the next). Use ExtractPixels with " +
                "interleavePixelColors: false (its default).", paramName);
        }

        throw new ArgumentException(
            $"Feature column '{s.FeatureColumnName}' has dimensions {d[0]}×{d[1]}×{d[2]} (C×H×W); expected {s.ShapeText}. Set ImageChannels, " +
            $"ImageHeight and ImageWidth to {d[0]}, {d[1]} and {d[2]}, or ResizeImages to imageWidth: {s.ImageWidth}, imageHeight: {s.ImageHeight}.", paramName);
    }

    private static string DimensionsText(VectorDataViewType vector) =>
        vector.Dimensions.Length > 1 ? $" (dimensions {string.Join("×", vector.Dimensions)})" : string.Empty;

    /// <summary>Validates the label column of a concrete schema for the task and returns it.</summary>
    /// <exception cref="ArgumentException">Missing, of another type than the task needs, or a key outside the class-count rule; the message says how to convert it.</exception>
    internal static DataViewSchema.Column CheckLabelColumn(DataViewSchema schema, ColumnSettings s, string paramName = "inputSchema")
    {
        string expected = TaskSchema.ExpectedLabel(s.Task, s.LabelColumnName);
        var col = schema.GetColumnOrNull(s.LabelColumnName)
            ?? throw new ArgumentException($"Label column '{s.LabelColumnName}' was not found in the input (columns: {ColumnList(schema)}); expected {expected}.", paramName);
        if (!TaskSchema.LabelFits(col.Type, s.Task))
            throw new ArgumentException($"Label column '{s.LabelColumnName}' has type {col.Type}; {Task(s)} expects {expected}.", paramName);
        if (col.Type is KeyDataViewType key && !ClassCountRule.IsValid(key.Count))
        {
            throw new ArgumentException(
                $"Label column '{s.LabelColumnName}' is a key with {key.Count} values; expected {ClassCountRule.RangeText} classes.", paramName);
        }

        return col;
    }

    private static string Task(ColumnSettings s) => s.Task switch
    {
        Networks.NetworkTask.BinaryClassification => "binary classification",
        Networks.NetworkTask.Regression => "regression",
        _ => "multiclass classification",
    };

    /// <summary>Estimator-side validation on a <see cref="SchemaShape"/> (vector lengths are not known there).</summary>
    internal static SchemaShape GetOutputShape(SchemaShape input, ColumnSettings s)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (Find(input, s.FeatureColumnName) is not { } feature)
        {
            throw new ArgumentException(
                $"Feature column '{s.FeatureColumnName}' was not found in the input (columns: {string.Join(", ", input.Select(c => c.Name))}); " +
                $"expected a known-size vector of Single (or Byte or Double) of length {s.ShapeText}.", nameof(input));
        }

        if (feature.Kind == SchemaShape.Column.VectorKind.Scalar || !IsFeatureItemType(feature.ItemType) || feature.IsKey)
        {
            throw new ArgumentException(
                $"Feature column '{s.FeatureColumnName}' has type {Describe(feature)}; expected a known-size vector of Single (or Byte or Double) " +
                $"of length {s.ShapeText}.", nameof(input));
        }

        if (feature.Kind == SchemaShape.Column.VectorKind.VariableVector)
        {
            throw new ArgumentException(
                $"Feature column '{s.FeatureColumnName}' is a variable-length vector of {feature.ItemType}; expected a known-size vector " +
                $"of length {s.ShapeText}.", nameof(input));
        }

        string expected = TaskSchema.ExpectedLabel(s.Task, s.LabelColumnName);
        if (Find(input, s.LabelColumnName) is not { } label)
            throw new ArgumentException($"Label column '{s.LabelColumnName}' was not found in the input; expected {expected}.", nameof(input));
        if (!TaskSchema.LabelFits(label, s.Task))
            throw new ArgumentException($"Label column '{s.LabelColumnName}' has type {Describe(label)}; {Task(s)} expects {expected}.", nameof(input));

        var keyValues = label.Annotations is null ? null : Find(label.Annotations, TaskSchema.KeyValuesAnnotation);
        var columns = input.ToDictionary(c => c.Name);
        TaskSchema.AddOutputShapes(columns, s, keyValues);
        return new SchemaShape(columns.Values);
    }

    /// <summary>The transformer's output schema: every input column, then the task's output columns (<see cref="TaskSchema"/>) and optionally the embedding.</summary>
    internal static DataViewSchema BuildOutputSchema(DataViewSchema input, ColumnSettings s, ClassLabels labels, int embeddingSize)
    {
        var b = new DataViewSchema.Builder();
        b.AddColumns(input);
        TaskSchema.AddOutputs(b, s, labels, embeddingSize);
        return b.ToSchema();
    }

    private static SchemaShape.Column? Find(SchemaShape shape, string name)
    {
        SchemaShape.Column? found = null;
        foreach (var c in shape)
        {
            if (c.Name == name)
                found = c;
        }

        return found;
    }

    private static string ColumnList(DataViewSchema schema) =>
        schema.Count == 0 ? "none" : string.Join(", ", schema.Where(c => !c.IsHidden).Select(c => $"'{c.Name}'"));

    private static string Describe(SchemaShape.Column c) => c.Kind switch
    {
        SchemaShape.Column.VectorKind.Scalar => c.IsKey ? $"Key<{c.ItemType}>" : $"{c.ItemType}",
        SchemaShape.Column.VectorKind.Vector => $"Vector<{c.ItemType}> (known size)",
        _ => $"Vector<{c.ItemType}> (variable size)",
    };
}
