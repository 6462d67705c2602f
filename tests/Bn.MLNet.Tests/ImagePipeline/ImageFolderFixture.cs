using Bn.MLNet.Data;
using Bn.MLNet.Samples.Commands;
using Bn.MLNet.Tests.MLNet;

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

    /// <summary>
    /// The MLNet tests' small network (one conv stage of 8 channels, a hidden layer of 32) for
    /// <paramref name="channels"/>-channel images, trained 2 epochs in batches of 32 on the few hundred PNGs.
    /// </summary>
    public static BatchNormCnnOptions SmallOptions(int channels)
    {
        BatchNormCnnOptions options = MLNetTestData.SmallOptions();
        options.ImageChannels = channels;
        options.Epochs = 2;
        options.BatchSize = 32;
        return options;
    }

    public void Dispose()
    {
        if (Directory.Exists(Root))
            Directory.Delete(Root, recursive: true);
    }
}
