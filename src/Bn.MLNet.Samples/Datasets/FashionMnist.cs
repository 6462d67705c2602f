using Microsoft.ML;

namespace Bn.MLNet.Samples.Datasets;

/// <summary>
/// Fashion-MNIST (Zalando Research, MIT licence): 28×28 greyscale images of 10 clothing classes, bundled under
/// <c>datasets/fashion-mnist</c> as its four original IDX gz files (see <c>datasets/README.md</c>).
/// </summary>
public static class FashionMnist
{
    /// <summary>Environment variable that, when set, names the folder holding the four IDX files.</summary>
    public const string DataDirectoryEnvironmentVariable = "BNMLNET_DATA";

    /// <summary>The bundled folder, relative to the repository root.</summary>
    public const string RelativeDataDirectory = "datasets/fashion-mnist";

    /// <summary>Image height.</summary>
    public const int ImageRows = 28;

    /// <summary>Image width.</summary>
    public const int ImageColumns = 28;

    /// <summary>Values per image: 784.</summary>
    public const int FeatureLength = ImageRows * ImageColumns;

    /// <summary>Number of classes: 10.</summary>
    public const int ClassCount = 10;

    /// <summary>Name of the key-typed label column in the loaded <see cref="IDataView"/>.</summary>
    public const string LabelColumnName = "Label";

    /// <summary>Name of the 784-long float-vector column in the loaded <see cref="IDataView"/>.</summary>
    public const string FeaturesColumnName = "Features";

    private static readonly string[] Names =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The 10 official class names, indexed by the label stored in the files (0 = T-shirt/top … 9 = Ankle boot).</summary>
    public static IReadOnlyList<string> ClassNames { get; } = Array.AsReadOnly(Names);

    /// <summary>
    /// Finds the folder holding the Fashion-MNIST IDX files: the <see cref="DataDirectoryEnvironmentVariable"/>
    /// environment variable if set (it must then exist); otherwise the first <see cref="RelativeDataDirectory"/> that
    /// holds the training images, walking up from <see cref="AppContext.BaseDirectory"/> and then from the current directory.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">Nothing was found; the message lists every path tried.</exception>
    public static string FindDataDirectory()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable(DataDirectoryEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment))
        {
            string full = Path.GetFullPath(fromEnvironment);
            if (!Directory.Exists(full))
            {
                throw new DirectoryNotFoundException(
                    $"{DataDirectoryEnvironmentVariable} is set to '{fromEnvironment}', but the folder '{full}' does not exist.");
            }

            return full;
        }

        var tried = new List<string>();
        foreach (string start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "datasets", "fashion-mnist");
                if (tried.Contains(candidate))
                {
                    continue;
                }

                tried.Add(candidate);
                if (TryResolve(candidate, "train-images-idx3-ubyte") is not null)
                {
                    return candidate;
                }
            }
        }

        throw new DirectoryNotFoundException(
            $"Fashion-MNIST not found: {DataDirectoryEnvironmentVariable} is not set and no '{RelativeDataDirectory}' folder holding "
            + "train-images-idx3-ubyte(.gz) exists above the application or current directory. Tried: "
            + string.Join(", ", tried) + $". Set {DataDirectoryEnvironmentVariable} or pass the folder explicitly.");
    }

    /// <summary>The image and label file paths of a split; each may be <c>name.gz</c> or the raw <c>name</c> (gz preferred).</summary>
    /// <param name="directory">The folder, or null for <see cref="FindDataDirectory"/>.</param>
    /// <param name="split">Train or test.</param>
    /// <exception cref="FileNotFoundException">A file is missing in both forms.</exception>
    public static (string ImagesPath, string LabelsPath) GetFilePaths(string? directory, FashionMnistSplit split)
    {
        string dir = directory ?? FindDataDirectory();
        string prefix = split switch
        {
            FashionMnistSplit.Train => "train",
            FashionMnistSplit.Test => "t10k",
            _ => throw new ArgumentOutOfRangeException(nameof(split), split, "Expected Train or Test."),
        };
        return (Resolve(dir, $"{prefix}-images-idx3-ubyte"), Resolve(dir, $"{prefix}-labels-idx1-ubyte"));
    }

    /// <summary>Reads a split's raw bytes (pixels 0..255 and labels 0..9), e.g. for an in-memory training path.</summary>
    /// <param name="directory">The folder, or null for <see cref="FindDataDirectory"/>.</param>
    /// <param name="split">Train or test.</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> rows (all when null).</param>
    /// <exception cref="InvalidDataException">A file is corrupt or truncated, counts differ, the images are not 28×28,
    /// or a label is not 0..9.</exception>
    public static IdxLabeledImages Read(string? directory, FashionMnistSplit split, int? limit = null)
    {
        var (imagesPath, labelsPath) = GetFilePaths(directory, split);
        var data = IdxReader.ReadLabeledImages(imagesPath, labelsPath, limit);
        if (data.Images.Rows != ImageRows || data.Images.Columns != ImageColumns)
        {
            throw new InvalidDataException(
                $"'{imagesPath}' holds images of {data.Images.Rows}×{data.Images.Columns}; Fashion-MNIST images are {ImageRows}×{ImageColumns}.");
        }

        for (int i = 0; i < data.Labels.Length; i++)
        {
            if (data.Labels[i] >= ClassCount)
            {
                throw new InvalidDataException(
                    $"'{labelsPath}' row {i} has label {data.Labels[i]}; Fashion-MNIST labels are 0..{ClassCount - 1}.");
            }
        }

        return data;
    }

    /// <summary>Loads the training split as an <see cref="IDataView"/> (see <see cref="Load"/>).</summary>
    public static IDataView LoadTrain(MLContext mlContext, string? directory = null, int? limit = null)
        => Load(mlContext, FashionMnistSplit.Train, directory, limit);

    /// <summary>Loads the test split as an <see cref="IDataView"/> (see <see cref="Load"/>).</summary>
    public static IDataView LoadTest(MLContext mlContext, string? directory = null, int? limit = null)
        => Load(mlContext, FashionMnistSplit.Test, directory, limit);

    /// <summary>
    /// Loads a split as an in-memory <see cref="LabeledImageDataView"/>: <c>Label</c> is a key of <see cref="uint"/>
    /// with 10 values whose <c>KeyValues</c> annotation holds <see cref="ClassNames"/> (file label k → key k+1), and
    /// <c>Features</c> is a vector of 784 <see cref="float"/> raw pixel values 0..255 (not scaled).
    /// Only the bytes are held in memory (about 47 MB for the full training split).
    /// </summary>
    /// <param name="mlContext">The ML.NET context (checked for null; the view needs no services from it).</param>
    /// <param name="split">Train or test.</param>
    /// <param name="directory">The folder, or null for <see cref="FindDataDirectory"/>.</param>
    /// <param name="limit">Read only the first <paramref name="limit"/> rows (all when null).</param>
    public static IDataView Load(MLContext mlContext, FashionMnistSplit split, string? directory = null, int? limit = null)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        return new LabeledImageDataView(Read(directory, split, limit), ClassNames, LabelColumnName, FeaturesColumnName);
    }

    private static string Resolve(string directory, string baseName)
        => TryResolve(directory, baseName) ?? throw new FileNotFoundException(
            $"Neither '{Path.Combine(directory, baseName + ".gz")}' nor '{Path.Combine(directory, baseName)}' exists.",
            Path.Combine(directory, baseName + ".gz"));

    private static string? TryResolve(string directory, string baseName)
    {
        string gz = Path.Combine(directory, baseName + ".gz");
        if (File.Exists(gz))
        {
            return gz;
        }

        string raw = Path.Combine(directory, baseName);
        return File.Exists(raw) ? raw : null;
    }
}
