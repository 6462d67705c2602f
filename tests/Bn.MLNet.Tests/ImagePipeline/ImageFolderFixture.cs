using Bn.MLNet.Data;
using Bn.MLNet.Networks;
using Bn.MLNet.Samples.Commands;

namespace Bn.MLNet.Tests.ImagePipeline;

/// <summary>
/// PNG files written once per test class: 480 Fashion-MNIST training images and 200 test images in class-named
/// folders (<c>train/&lt;class&gt;</c>, <c>test/&lt;class&gt;</c>) under one root; every 4th is a tinted RGB 40×36 image.
/// </summary>
public sealed class ImageFolderFixture : IDisposable
{
    public const int TrainCount = 480;
    public const int TestCount = 200;

    public ImageFolderFixture()
    {
        Root = Directory.CreateTempSubdirectory("bnmlnet-images-").FullName;
        ImagePipelineCommand.WriteFashionMnistImages(Path.Combine(Root, "train"), FashionMnistSplit.Train, TrainCount);
        ImagePipelineCommand.WriteFashionMnistImages(Path.Combine(Root, "test"), FashionMnistSplit.Test, TestCount);
        Train = ImagePipelineCommand.ListImages(Root, "train");
        Test = ImagePipelineCommand.ListImages(Root, "test");
    }

    /// <summary>The folder given to LoadImages.</summary>
    public string Root { get; }

    internal List<ImagePipelineCommand.ImageFile> Train { get; }

    internal List<ImagePipelineCommand.ImageFile> Test { get; }

    /// <summary>A small, fast network: one conv stage of 8 channels, a hidden layer of 32.</summary>
    public static BatchNormCnnOptions SmallOptions(int channels) => new()
    {
        ImageChannels = channels,
        ConvStages = [new ConvStage(8, 1, true)],
        HiddenLayers = [32],
        Dropout = 0.1,
        Epochs = 2,
        BatchSize = 32,
        LearningRate = 0.05,
        Seed = 7,
        InferenceBatchSize = 64,
    };

    public void Dispose()
    {
        if (Directory.Exists(Root))
            Directory.Delete(Root, recursive: true);
    }
}
