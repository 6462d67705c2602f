using Microsoft.ML;
using Microsoft.ML.Data;
using Xunit.Sdk;
using static Bn.MLNet.Tests.MLNet.MLNetTestData;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>The workout's own checks fail when a promise is broken (so a passing workout means something).</summary>
[Collection(TorchGlobalStateCollection.Name)]
public class EstimatorWorkoutTests
{
    [Fact]
    public void APromiseThatDiffersFromTheDeliveryFails()
    {
        var p = Pipeline;
        var bn = BnTransformer(p.Model);
        var keyed = p.Context.Transforms.Conversion.MapValueToKey("Label").Fit(p.Train).Transform(p.Test);
        var delivered = bn.Transform(keyed).Schema;
        var withEmbedding = SmallOptions();
        withEmbedding.EmbeddingColumnName = "Embedding";
        var promised = p.Context.Transforms.BatchNormCnn(withEmbedding).GetOutputSchema(MLNetInternals.ToSchemaShape(keyed.Schema));
        Assert.ThrowsAny<XunitException>(() => EstimatorWorkout.PromiseIsDelivered(promised, delivered, ["Score", "PredictedLabel"]));

        var honest = p.Context.Transforms.BatchNormCnn(SmallOptions()).GetOutputSchema(MLNetInternals.ToSchemaShape(keyed.Schema));
        EstimatorWorkout.PromiseIsDelivered(honest, delivered, ["Score", "PredictedLabel"]);
    }

    [Fact]
    public void SchemasWithAnotherKeyCountOrSlotNamesDiffer()
    {
        var ml = new MLContext(seed: 1);
        var ten = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Rows(Bn.MLNet.Data.FashionMnistSplit.Train, 100)));
        var few = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(Rows(Bn.MLNet.Data.FashionMnistSplit.Train, 3)));
        var data = ml.Data.LoadFromEnumerable(Rows(Bn.MLNet.Data.FashionMnistSplit.Train, 3));
        Assert.ThrowsAny<XunitException>(() => EstimatorWorkout.SameSchema(ten.Transform(data).Schema, few.Transform(data).Schema));
        EstimatorWorkout.SameSchema(ten.Transform(data).Schema, ten.Transform(data).Schema);
    }
}
