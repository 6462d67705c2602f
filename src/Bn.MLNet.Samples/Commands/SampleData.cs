using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Training;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Samples.Commands;

/// <summary>
/// Fashion-MNIST as an application would usually have it: a <c>Features</c> pixel vector and the class name as text in
/// <c>Class</c>, so the pipeline maps it to a key itself (<c>MapValueToKey</c>).
/// </summary>
internal static class SampleData
{
    /// <summary>Text class column.</summary>
    public const string ClassColumn = "Class";

    /// <summary>Predicted class name column (after <c>MapKeyToValue</c>).</summary>
    public const string PredictedClassColumn = "PredictedClass";

    /// <summary>Loads one split with the class name as text (the loader's key label is converted and dropped).</summary>
    public static IDataView Load(MLContext ml, FashionMnistSplit split, string? directory, int? limit)
    {
        IDataView keyed = FashionMnist.Load(ml, split, directory, limit);
        var toText = ml.Transforms.Conversion.MapKeyToValue(ClassColumn, FashionMnist.LabelColumnName)
            .Append(ml.Transforms.DropColumns(FashionMnist.LabelColumnName));
        return toText.Fit(keyed).Transform(keyed);
    }

    /// <summary>
    /// The ordinary pipeline around the estimator: text class → key <c>Label</c> (keys in the official class order),
    /// the BN CNN, predicted key → text <c>PredictedClass</c>.
    /// </summary>
    public static IEstimator<ITransformer> Pipeline(MLContext ml, BatchNormCnnOptions options) =>
        ToKey(ml, options.LabelColumnName)
            .Append(ml.Transforms.BatchNormCnn(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue(PredictedClassColumn, options.PredictedLabelColumnName));

    /// <summary>Text class → key <paramref name="labelColumnName"/>, keys in the official class order.</summary>
    public static IEstimator<ITransformer> ToKey(MLContext ml, string labelColumnName = FashionMnist.LabelColumnName) =>
        ml.Transforms.Conversion.MapValueToKey(labelColumnName, ClassColumn, keyData: ClassOrder(ml));

    /// <summary>
    /// The model <see cref="Pipeline"/> fits, from its parts: the fitted text → key mapping, the BN CNN and a predicted
    /// key → text mapping fitted here on <paramref name="keyed"/> (rows the key mapping produced).
    /// </summary>
    public static ITransformer Chain(MLContext ml, ITransformer toKey, BatchNormCnnTransformer cnn, IDataView keyed)
    {
        var toText = ml.Transforms.Conversion.MapKeyToValue(PredictedClassColumn, cnn.PredictedLabelColumnName).Fit(cnn.Transform(keyed));
        return new TransformerChain<ITransformer>(toKey, cnn, toText);
    }

    /// <summary>
    /// The same model <see cref="Pipeline"/> fits (text class → key, the BN CNN, predicted key → text), built around a
    /// network trained outside ML.NET (the <c>train</c> command's, or one read with <see cref="BatchNormCnnNetwork.Load(string)"/>);
    /// the chain holds its own copy of the weights.
    /// </summary>
    /// <exception cref="ArgumentException">The network does not have Fashion-MNIST's 10 classes.</exception>
    public static ITransformer PipelineFromNetwork(MLContext ml, BatchNormCnnNetwork network, TrainingHistory? history)
    {
        if (network.Architecture.ClassCount != FashionMnist.ClassCount)
        {
            throw new ArgumentException(
                $"The network has {network.Architecture.ClassCount} classes; these commands use Fashion-MNIST's {FashionMnist.ClassCount}.", nameof(network));
        }

        IDataView input = ml.Data.LoadFromEnumerable(Array.Empty<ImageRow>(), RowSchema(network.Architecture.InputLength));
        var toKey = ToKey(ml).Fit(input);
        var cnn = BatchNormCnnTransformer.FromNetwork(ml, network, FashionMnist.ClassNames, null, history);
        return Chain(ml, toKey, cnn, toKey.Transform(input));
    }

    /// <summary>The input schema of the models these commands save (a <c>Features</c> vector and the text <c>Class</c>).</summary>
    public static DataViewSchema InputSchema(MLContext ml, int featureLength) =>
        ml.Data.LoadFromEnumerable(Array.Empty<ImageRow>(), RowSchema(featureLength)).Schema;

    /// <summary>Row type for prediction engines over the pipeline.</summary>
    public sealed class ImageRow
    {
        /// <summary>Raw pixels, 0..255, row-major C×H×W (the size is set through a schema definition).</summary>
        public float[] Features { get; set; } = Array.Empty<float>();

        /// <summary>Class name, if known (unused for scoring).</summary>
        public string Class { get; set; } = string.Empty;
    }

    /// <summary>Prediction of the pipeline.</summary>
    public sealed class Prediction
    {
        /// <summary>Softmax probabilities, one per class.</summary>
        public float[] Score { get; set; } = Array.Empty<float>();

        /// <summary>Predicted class name.</summary>
        public string PredictedClass { get; set; } = string.Empty;
    }

    /// <summary>A prediction engine whose input vector has <paramref name="featureLength"/> values.</summary>
    public static PredictionEngine<ImageRow, Prediction> CreateEngine(MLContext ml, ITransformer model, int featureLength) =>
        ml.Model.CreatePredictionEngine<ImageRow, Prediction>(model, inputSchemaDefinition: RowSchema(featureLength));

    /// <summary>The <see cref="ImageRow"/> schema with a known-size feature vector of <paramref name="featureLength"/> values.</summary>
    public static SchemaDefinition RowSchema(int featureLength)
    {
        var schema = SchemaDefinition.Create(typeof(ImageRow));
        schema[nameof(ImageRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, featureLength);
        return schema;
    }

    private static IDataView ClassOrder(MLContext ml) =>
        ml.Data.LoadFromEnumerable(FashionMnist.ClassNames.Select(n => new ClassName { Class = n }));

    private sealed class ClassName
    {
        public string Class { get; set; } = string.Empty;
    }
}
