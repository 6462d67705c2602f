using Bn.MLNet.Networks;

namespace Bn.MLNet.Tests.Networks;

public class NetworkArchitectureTests
{
    [Fact]
    public void JsonRoundTripKeepsEveryField()
    {
        var a = NetworkArchitecture.Default();
        a.Normalization = NormalizationKind.Group;
        a.GroupCount = 4;
        a.Activation = ActivationKind.Tanh;
        a.BatchNormMomentum = null;
        a.BatchNormEps = 1e-3;
        a.Dropout = 0.1;
        string json = a.ToJson();
        Assert.Contains("\"normalization\":\"Group\"", json);
        var b = NetworkArchitecture.FromJson(json);
        Assert.Equal(json, b.ToJson());
        Assert.Equal(2, b.ConvStages.Count);
        Assert.Equal(64, b.ConvStages[1].Channels);
        Assert.Null(b.BatchNormMomentum);
    }

    [Fact]
    public void PaperMnistMlpIsTheFigure1Network()
    {
        var a = NetworkArchitecture.PaperMnistMlp();
        Assert.Empty(a.ConvStages);
        Assert.Equal(new[] { 100, 100, 100 }, a.HiddenLayers);
        Assert.Equal(ActivationKind.Sigmoid, a.Activation);
        Assert.Equal(NormalizationKind.Batch, a.Normalization);
    }

    [Theory]
    [InlineData("ClassCount")]
    [InlineData("Dropout")]
    [InlineData("ConvStages[1].Channels")]
    [InlineData("GroupCount")]
    [InlineData("BatchNormMomentum")]
    [InlineData("ConvStages[4].MaxPool")]
    public void ValidateNamesTheBadField(string field)
    {
        var a = NetworkArchitecture.Default();
        switch (field)
        {
            case "ClassCount": a.ClassCount = 1; break;
            case "Dropout": a.Dropout = 1.5; break;
            case "ConvStages[1].Channels": a.ConvStages[1].Channels = 0; break;
            case "GroupCount": a.Normalization = NormalizationKind.Group; a.GroupCount = 5; break;
            case "BatchNormMomentum": a.Normalization = NormalizationKind.BatchNative; a.BatchNormMomentum = null; break;
            case "ConvStages[4].MaxPool":
                a.ConvStages.Add(new ConvStage(8));
                a.ConvStages.Add(new ConvStage(8));
                a.ConvStages.Add(new ConvStage(8));
                break;
        }

        var ex = Assert.Throws<ArgumentException>(a.Validate);
        Assert.Equal(field, ex.ParamName);
        Assert.Contains(field, ex.Message);
    }

    [Theory]
    [InlineData(0.0, true)]
    [InlineData(1.0, true)]
    [InlineData(-0.1, false)]
    [InlineData(1.5, false)]
    public void BatchNormMomentumFollowsTheLayersRule(double momentum, bool valid)
    {
        var a = NetworkArchitecture.Default();
        a.BatchNormMomentum = momentum;
        Exception? architecture = Record.Exception(a.Validate);
        Exception? layer = Record.Exception(() => new Bn.MLNet.Normalization.BatchNorm2d(4, momentum: momentum).Dispose());
        Assert.Equal(valid, architecture is null);
        Assert.Equal(valid, layer is null);
    }

    [Fact]
    public void FromJsonRejectsInvalidJsonAndInvalidValues()
    {
        Assert.Throws<ArgumentException>(() => NetworkArchitecture.FromJson("{not json"));
        var ex = Assert.Throws<ArgumentException>(() => NetworkArchitecture.FromJson("{\"inputChannels\":0}"));
        Assert.Equal("InputChannels", ex.ParamName);
    }
}
