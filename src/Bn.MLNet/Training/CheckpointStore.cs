using System.Globalization;
using Bn.MLNet.Native;

namespace Bn.MLNet.Training;

/// <summary>
/// The checkpoints of a run in <see cref="TrainerOptions.CheckpointDirectory"/>: <c>checkpoint-NNNNNN.bnckpt</c>, NNNNNN
/// the epochs done. Each is written atomically (a temporary file beside it, flushed to disk, then renamed over the
/// name and the folder flushed), so a crash while writing leaves the previous checkpoint intact; only the newest
/// <see cref="TrainerOptions.CheckpointsToKeep"/> are kept.
/// </summary>
internal sealed class CheckpointStore
{
    private const string Prefix = "checkpoint-";
    private const string Temporary = ".tmp";
    private readonly int _keep;

    public CheckpointStore(string directory, int keep)
    {
        Directory = Path.GetFullPath(directory);
        _keep = keep;
    }

    /// <summary>The folder (full path).</summary>
    public string Directory { get; }

    /// <summary>The store of <paramref name="options"/>, or null when checkpoints are off.</summary>
    public static CheckpointStore? For(TrainerOptions options) =>
        options.CheckpointDirectory is { } dir ? new CheckpointStore(dir, options.CheckpointsToKeep) : null;

    /// <summary>The newest checkpoint, read and verified; null when the folder holds none.</summary>
    /// <exception cref="InvalidDataException">The newest checkpoint is damaged (the message names the file).</exception>
    public Checkpoint? LoadLatest() => Files().FirstOrDefault() is { } newest ? Checkpoint.Read(newest) : null;

    /// <summary>Writes the checkpoint of <paramref name="completedEpochs"/> epochs atomically, then prunes; returns its path.</summary>
    public string Save(int completedEpochs, Action<Stream> write)
    {
        System.IO.Directory.CreateDirectory(Directory);
        string path = Path.Combine(Directory, Prefix + completedEpochs.ToString("D6", CultureInfo.InvariantCulture) + Checkpoint.Extension);
        string temporary = path + Temporary;
        try
        {
            using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temporary, path, overwrite: true);
            DirectorySync.Flush(Directory);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }

        Prune();
        return path;
    }

    /// <summary>Checkpoint files, newest (most epochs) first.</summary>
    private IEnumerable<string> Files() =>
        !System.IO.Directory.Exists(Directory)
            ? Enumerable.Empty<string>()
            : System.IO.Directory.EnumerateFiles(Directory, Prefix + "*" + Checkpoint.Extension)
                .Select(f => (File: f, Epochs: EpochsOf(f)))
                .Where(f => f.Epochs is not null)
                .OrderByDescending(f => f.Epochs)
                .Select(f => f.File);

    private static int? EpochsOf(string file)
    {
        string name = Path.GetFileNameWithoutExtension(file);
        return int.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int epochs) ? epochs : null;
    }

    private void Prune()
    {
        foreach (string old in Files().Skip(_keep))
            File.Delete(old);
    }
}
