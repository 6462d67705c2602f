using System.IO.Compression;
using System.Security.Cryptography;
using Bn.MLNet.Data;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.Data;

public sealed class FashionMnistTests
{
    private static readonly string Dir = FashionMnist.FindDataDirectory();

    [Fact]
    public void ClassNamesAreTheOfficialTen()
    {
        Assert.Equal(
            ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
            FashionMnist.ClassNames);
    }

    [Fact]
    public void BundledFilesMatchThePublishedSha256()
    {
        var expected = new Dictionary<string, string>
        {
            ["train-images-idx3-ubyte.gz"] = "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            ["train-labels-idx1-ubyte.gz"] = "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            ["t10k-images-idx3-ubyte.gz"] = "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            ["t10k-labels-idx1-ubyte.gz"] = "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        };
        foreach (var (name, sha) in expected)
        {
            using var file = File.OpenRead(Path.Combine(Dir, name));
            using var zip = new GZipStream(file, CompressionMode.Decompress);
            Assert.Equal(sha, Convert.ToHexStringLower(SHA256.HashData(zip)));
        }
    }

    [Fact]
    public void FullLabelFilesHaveTheDocumentedCounts()
    {
        var (_, trainLabels) = FashionMnist.GetFilePaths(Dir, FashionMnistSplit.Train);
        var (_, testLabels) = FashionMnist.GetFilePaths(Dir, FashionMnistSplit.Test);
        var train = IdxReader.ReadLabels(trainLabels);
        var test = IdxReader.ReadLabels(testLabels);
        Assert.Equal(60_000, train.Length);
        Assert.Equal(10_000, test.Length);
        // Fashion-MNIST is balanced: 6,000 and 1,000 per class.
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(6_000, train.Count(l => l == c)));
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(1_000, test.Count(l => l == c)));
    }

    [Fact]
    public void LoadTrainHasTheDocumentedSchemaAndTheFileValues()
    {
        var mlContext = new MLContext(seed: 1);
        var view = FashionMnist.LoadTrain(mlContext, limit: 500);

        Assert.Equal(500, view.GetRowCount());
        var label = view.Schema["Label"];
        var key = Assert.IsType<KeyDataViewType>(label.Type);
        Assert.Equal(typeof(uint), key.RawType);
        Assert.Equal(10UL, key.Count);
        VBuffer<ReadOnlyMemory<char>> names = default;
        label.GetKeyValues(ref names);
        Assert.Equal(FashionMnist.ClassNames, names.DenseValues().Select(n => n.ToString()));

        var features = Assert.IsType<VectorDataViewType>(view.Schema["Features"].Type);
        Assert.Equal(NumberDataViewType.Single, features.ItemType);
        Assert.True(features.IsKnownSize);
        Assert.Equal(784, features.Size);

        // Independent read of the raw files: labels start at byte 8, pixels at byte 16.
        var (imagesPath, labelsPath) = FashionMnist.GetFilePaths(Dir, FashionMnistSplit.Train);
        var rawLabels = Decompress(labelsPath, 8 + 500).AsSpan(8).ToArray();
        var rawPixels = Decompress(imagesPath, 16 + (2 * 784)).AsSpan(16).ToArray();
        Assert.Equal(9, rawLabels[0]);
        Assert.Equal("Ankle boot", FashionMnist.ClassNames[rawLabels[0]]);

        var rows = mlContext.Data.CreateEnumerable<Row>(view, reuseRowObject: false).ToList();
        Assert.Equal(500, rows.Count);
        Assert.Equal(rawLabels.Select(l => (uint)(l + 1)), rows.Select(r => r.Label)); // raw key values: file label k is key k+1
        Assert.Equal(rawPixels.AsSpan(0, 784).ToArray().Select(p => (float)p), rows[0].Features);
        Assert.Equal(rawPixels.AsSpan(784, 784).ToArray().Select(p => (float)p), rows[1].Features);
        Assert.Contains(rows, r => r.Features.Max() == 255f); // raw, unscaled

        // ML.NET maps the key back to the class names through the KeyValues annotation.
        var mapped = mlContext.Transforms.Conversion.MapKeyToValue("Name", "Label").Fit(view).Transform(view);
        var texts = mapped.GetColumn<ReadOnlyMemory<char>>("Name").Take(3).Select(t => t.ToString()).ToArray();
        Assert.Equal(rawLabels.Take(3).Select(l => FashionMnist.ClassNames[l]), texts);
    }

    [Fact]
    public void ShuffledCursorCoversEveryRowOnceAndTestSplitLoads()
    {
        var view = FashionMnist.LoadTest(new MLContext(seed: 2), Dir, limit: 300);
        var raw = FashionMnist.Read(Dir, FashionMnistSplit.Test, limit: 300);
        var expected = raw.Labels.GroupBy(l => l).ToDictionary(g => (uint)(g.Key + 1), g => g.Count());

        var ids = new List<ulong>();
        var counts = new Dictionary<uint, int>();
        using (var cursor = view.GetRowCursor(view.Schema, new Random(3)))
        {
            var idGetter = cursor.GetIdGetter();
            var labelGetter = cursor.GetGetter<uint>(view.Schema["Label"]);
            DataViewRowId id = default;
            uint label = 0;
            while (cursor.MoveNext())
            {
                idGetter(ref id);
                labelGetter(ref label);
                ids.Add(id.Low);
                counts[label] = counts.GetValueOrDefault(label) + 1;
            }
        }

        Assert.Equal(Enumerable.Range(0, 300).Select(i => (ulong)i), ids.Order());
        Assert.NotEqual(Enumerable.Range(0, 300).Select(i => (ulong)i), ids);
        Assert.Equal(expected.OrderBy(p => p.Key), counts.OrderBy(p => p.Key));
    }

    [Fact]
    public void ImagesThatAreNot28By28OrLabelsAbove9AreRefused()
    {
        using var dir = new TempDirectory();
        IdxTestFiles.Write(dir.File("t10k-images-idx3-ubyte.gz"), IdxTestFiles.Images(2, 27, 28, new byte[2 * 27 * 28]), gzip: true);
        IdxTestFiles.Write(dir.File("t10k-labels-idx1-ubyte"), IdxTestFiles.Labels([1, 2]), gzip: false);
        var e = Assert.Throws<InvalidDataException>(() => FashionMnist.Read(dir.Path, FashionMnistSplit.Test));
        Assert.Contains("27×28", e.Message);
        Assert.Contains("t10k-images-idx3-ubyte.gz", e.Message);

        IdxTestFiles.Write(dir.File("train-images-idx3-ubyte"), IdxTestFiles.Images(2, 28, 28, new byte[2 * 784]), gzip: false);
        IdxTestFiles.Write(dir.File("train-labels-idx1-ubyte.gz"), IdxTestFiles.Labels([3, 12]), gzip: true);
        var e2 = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadTrain(new MLContext(), dir.Path));
        Assert.Contains("row 1", e2.Message);
        Assert.Contains("12", e2.Message);

        var e3 = Assert.Throws<FileNotFoundException>(() => FashionMnist.GetFilePaths(Path.Combine(dir.Path, "missing"), FashionMnistSplit.Train));
        Assert.Contains("train-images-idx3-ubyte", e3.Message);
    }

    private static byte[] Decompress(string path, int bytes)
    {
        using var file = File.OpenRead(path);
        using var zip = new GZipStream(file, CompressionMode.Decompress);
        var buffer = new byte[bytes];
        zip.ReadExactly(buffer);
        return buffer;
    }

    private sealed class Row
    {
        [KeyType(10)]
        public uint Label { get; set; }

        [VectorType(784)]
        public float[] Features { get; set; } = [];
    }
}

/// <summary>Tests that set the process-wide BNMLNET_DATA variable run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DataEnvironmentCollection
{
    public const string Name = "Data environment variable";
}

[Collection(DataEnvironmentCollection.Name)]
public sealed class FashionMnistDirectoryTests
{
    [Fact]
    public void FindsTheBundledFolderOrTheEnvironmentVariable()
    {
        string? saved = Environment.GetEnvironmentVariable(FashionMnist.DataDirectoryEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(FashionMnist.DataDirectoryEnvironmentVariable, null);
            string found = FashionMnist.FindDataDirectory();
            Assert.Equal("fashion-mnist", Path.GetFileName(found));
            Assert.True(File.Exists(Path.Combine(found, "train-images-idx3-ubyte.gz")));

            using var dir = new TempDirectory();
            Environment.SetEnvironmentVariable(FashionMnist.DataDirectoryEnvironmentVariable, dir.Path);
            Assert.Equal(Path.GetFullPath(dir.Path), FashionMnist.FindDataDirectory());

            string missing = Path.Combine(dir.Path, "absent");
            Environment.SetEnvironmentVariable(FashionMnist.DataDirectoryEnvironmentVariable, missing);
            var e = Assert.Throws<DirectoryNotFoundException>(FashionMnist.FindDataDirectory);
            Assert.Contains(missing, e.Message);
            Assert.Contains(FashionMnist.DataDirectoryEnvironmentVariable, e.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(FashionMnist.DataDirectoryEnvironmentVariable, saved);
        }
    }
}
