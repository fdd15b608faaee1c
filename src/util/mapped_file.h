// A read-only memory-mapped file. Model weights are used in place from the mapping, so loading a
// model costs no copy and the page cache is shared between processes. The file also stays open for
// ReadAt: a copy through the page cache that maps nothing into the process (see ReadAt).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace g4 {

class MappedFile {
 public:
  // Maps the whole file read-only. Throws g4::Error naming the path if it cannot.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Hints that [offset, offset+len) will be read soon (madvise WILLNEED). Never fails.
  void Prefetch(size_t offset, size_t len) const;

  // Copies [offset, offset+len) to dst with pread. Unlike a read through the mapping, nothing becomes
  // resident in this process: a page fault on a file mapping maps the whole read-ahead window around
  // it (tens of MB per fault with a large read_ahead_kb and large folios), which made scattered row
  // reads of a large table grow the resident set by far more than the rows. Thread-safe. Throws
  // g4::Error naming the path and offset on a range outside the file or a read error.
  void ReadAt(size_t offset, size_t len, void* dst) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int fd_ = -1;
};

}  // namespace g4
