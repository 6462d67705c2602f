using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Microsoft.ML;
using Microsoft.ML.Data;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.MLNet;

[Collection(TorchGlobalStateCollection.Name)]
public class BatchNormCnnSchemaTests
{
    public sealed class ShortRow
    {
        public uint Label { get; set; }

        [VectorType(100)]
        public float[] Features { get; set; } = new float[100];
    }

    public sealed class VariableRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        public float[] Features { get; set; } = new float[784];
    }

    public sealed class ScalarRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        public float Features { get; set; }
    }

    public sealed class IntVectorRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [VectorType(784)]
        public int[] Features { get; set; } = new int[784];
    }

    public sealed class ByteRow
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [VectorType(784)]
        public byte[] Features { get; set; } = new byte[784];
    }

    private static readonly MLContext Ml = new(seed: 1);

    private static ArgumentException FitFails<TRow>(TRow[] rows, BatchNormCnnOptions? options = null)
        where TRow : class
    {
        var data = Ml.Data.LoadFromEnumerable(rows);
        var estimator = Ml.Transforms.BatchNormCnn(options ?? SmallOptions());
        return Assert.ThrowsAny<ArgumentException>(() => estimator.Fit(data));
    }

    private static ArgumentException ShapeFails<TRow>(TRow[] rows, BatchNormCnnOptions? options = null)
        where TRow : class
    {
        var data = Ml.Data.LoadFromEnumerable(rows);
        var estimator = Ml.Transforms.BatchNormCnn(options ?? SmallOptions());
        var shape = ToShape(data.Schema);
        return Assert.ThrowsAny<ArgumentException>(() => estimator.GetOutputSchema(shape));
    }

    /// <summary>SchemaShape of a concrete schema (ML.NET's own SchemaShape.Create is internal; reached through MLNetInternals).</summary>
    private static SchemaShape ToShape(DataViewSchema schema) => MLNetInternals.ToSchemaShape(schema);

    [Fact]
    public void WrongVectorLengthIsRefusedWithLengthAndExpectation()
    {
        var ex = FitFails([new ShortRow { Label = 1 }]);
        Assert.Contains("'Features'", ex.Message);
        Assert.Contains("length 100", ex.Message);
        Assert.Contains("1×28×28 = 784", ex.Message);
    }

    [Fact]
    public void NonKeyLabelIsRefusedWithMapValueToKeyHint()
    {
        var rows = Rows(FashionMnistSplit.Train, 3); // string label
        var ex = FitFails(rows.ToArray());
        Assert.Contains("'Label'", ex.Message);
        Assert.Contains("String", ex.Message);
        Assert.Contains("MapValueToKey", ex.Message);
        ex = ShapeFails(rows.ToArray());
        Assert.Contains("MapValueToKey", ex.Message);
    }

    [Fact]
    public void MissingColumnsAreNamed()
    {
        var rows = Rows(FashionMnistSplit.Train, 3).ToArray();
        var o = SmallOptions();
        o.FeatureColumnName = "Pixels";
        var ex = FitFails(rows, o);
        Assert.Contains("'Pixels' was not found", ex.Message);
        Assert.Contains("'Features'", ex.Message); // lists what exists
        Assert.Contains("'Pixels' was not found", ShapeFails(rows, o).Message);

        o = SmallOptions();
        o.LabelColumnName = "Class";
        var keyed = Ml.Transforms.Conversion.MapValueToKey("Label").Fit(Ml.Data.LoadFromEnumerable(rows)).Transform(Ml.Data.LoadFromEnumerable(rows));
        ex = Assert.ThrowsAny<ArgumentException>(() => Ml.Transforms.BatchNormCnn(o).Fit(keyed));
        Assert.Contains("Label column 'Class' was not found", ex.Message);
    }

    [Fact]
    public void VariableLengthVectorIsRefused()
    {
        var ex = FitFails([new VariableRow { Label = 1 }]);
        Assert.Contains("variable-length", ex.Message);
        Assert.Contains("'Features'", ex.Message);
        Assert.Contains("variable-length", ShapeFails([new VariableRow { Label = 1 }]).Message);
    }

    [Fact]
    public void ScalarOrIntegerFeaturesAreRefused()
    {
        var ex = FitFails([new ScalarRow { Label = 1 }]);
        Assert.Contains("has type Single", ex.Message);
        Assert.Contains("expected a known-size vector", ex.Message);
        ex = FitFails([new IntVectorRow { Label = 1 }]);
        Assert.Contains("Vector<Int32, 784>", ex.Message);
    }

    [Fact]
    public void WrongShapeOptionsAreRefused()
    {
        var o = SmallOptions();
        o.ImageChannels = 0;
        var ex = Assert.ThrowsAny<ArgumentException>(() => Ml.Transforms.BatchNormCnn(o));
        Assert.Contains("ImageChannels", ex.Message);

        o = SmallOptions();
        o.ImageHeight = 30;
        ex = FitFails(Ml.Transforms.Conversion.MapValueToKey("Label").Fit(Ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 3)))
            .Transform(Ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 3))), o);
        Assert.Contains("length 784", ex.Message);
        Assert.Contains("1×30×28 = 840", ex.Message);

        o = SmallOptions();
        o.Normalization = NormalizationKind.Layer;
        o.InferenceMode = BatchNormInferenceMode.PopulationStatistics;
        Assert.Contains("PopulationStatistics needs Normalization = Batch", Assert.ThrowsAny<ArgumentException>(() => Ml.Transforms.BatchNormCnn(o)).Message);

        o = SmallOptions();
        o.ScoreColumnName = "Out";
        o.PredictedLabelColumnName = "Out";
        Assert.Contains("distinct", Assert.ThrowsAny<ArgumentException>(() => Ml.Transforms.BatchNormCnn(o)).Message);

        // Features that are not an image (1×1×784) with the default random-crop padding: refused naming the option.
        o = SmallOptions();
        (o.ImageHeight, o.ImageWidth, o.ImageChannels, o.RandomCropPadding, o.ConvStages) = (1, 1, 784, 2, []);
        ex = Assert.ThrowsAny<ArgumentException>(() => Ml.Transforms.BatchNormCnn(o));
        Assert.Contains("BatchNormCnnOptions.RandomCropPadding must be smaller than the image (1×1)", ex.Message);
    }

    private static ArgumentException FitFails(IDataView data, BatchNormCnnOptions o) =>
        Assert.ThrowsAny<ArgumentException>(() => Ml.Transforms.BatchNormCnn(o).Fit(data));

    [Fact]
    public void EstimatorOutputShapeDescribesScoreAndPrediction()
    {
        var rows = Ml.Data.LoadFromEnumerable(Rows(FashionMnistSplit.Train, 3));
        var pipeline = Ml.Transforms.Conversion.MapValueToKey("Label").Append(Ml.Transforms.BatchNormCnn(SmallOptions()));
        var shape = pipeline.GetOutputSchema(ToShape(rows.Schema));
        var score = shape.Single(c => c.Name == "Score");
        Assert.Equal(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.Equal(NumberDataViewType.Single, score.ItemType);
        Assert.Contains(score.Annotations, a => a.Name == "SlotNames");
        var predicted = shape.Single(c => c.Name == "PredictedLabel");
        Assert.True(predicted.IsKey);
        Assert.Contains(predicted.Annotations, a => a.Name == "KeyValues");
        Assert.Contains(shape, c => c.Name == "Features");
    }

    [Fact]
    public void TransformerRefusesWrongLengthAtScoringTime()
    {
        var bn = BnTransformer(Pipeline.Model);
        var data = Ml.Data.LoadFromEnumerable(new[] { new ShortRow() });
        var ex = Assert.ThrowsAny<ArgumentException>(() => bn.GetOutputSchema(data.Schema));
        Assert.Contains("length 100", ex.Message);
        Assert.ThrowsAny<ArgumentException>(() => bn.Transform(data));
        // Scoring without a label column works (prediction-time data).
        var noLabel = Ml.Data.LoadFromEnumerable(new[] { new ByteRow() });
        var scored = bn.Transform(Ml.Transforms.DropColumns("Label").Fit(noLabel).Transform(noLabel));
        var s = scored.GetColumn<float[]>("Score").Single();
        Assert.Equal(10, s.Length);
        Assert.Equal(1.0, s.Sum(), 3);
    }
}
